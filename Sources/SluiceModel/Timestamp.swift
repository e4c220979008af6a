import Foundation

/// UTC ISO-8601 with milliseconds, `2026-11-30T23:18:21.123Z`, formatted by hand: it runs for every recorded
/// event, and `ISO8601DateFormatter` (or even `gmtime_r` and string padding) costs an order of magnitude more.
public enum Timestamp {
    public static func iso8601(_ date: Date) -> String {
        var bytes = ByteSink(capacity: 24)
        appendISO8601(date, to: &bytes)
        return bytes.withUnsafeBytes { String(decoding: $0, as: UTF8.self) }
    }

    /// Appends `YYYY-MM-DDTHH:MM:SS.mmmZ`. Years before 0 or after 9999 (a damaged store) are written as 0000 or 9999;
    /// a time that is not a number as the epoch.
    public static func appendISO8601(_ date: Date, to bytes: inout ByteSink) {
        // Clamped before the conversion, which traps on a value beyond Int64 (a damaged store's time, say).
        let millis = (date.timeIntervalSince1970 * 1000).rounded()
        let totalMillis = millis.isNaN ? 0 : Int64(min(max(millis, -1e15), 1e15))
        let millisPerDay: Int64 = 86_400_000
        let day = totalMillis >= 0 ? totalMillis / millisPerDay : (totalMillis - millisPerDay + 1) / millisPerDay
        let millisOfDay = totalMillis - day * millisPerDay
        let (civilYear, month, dayOfMonth) = civilDate(daysSinceEpoch: day)
        let year = min(max(civilYear, 0), 9999)
        let seconds = millisOfDay / 1000
        let millisOfSecond = millisOfDay % 1000
        // The 24 bytes are written in place, two digits at a time from a table.
        bytes.append(count: 24) { text in
            digitPairs.withUnsafeBufferPointer { pairs in
                func put(_ value: Int64, at offset: Int) {
                    let index = Int(truncatingIfNeeded: value) &* 2
                    text[offset] = pairs[index]
                    text[offset + 1] = pairs[index + 1]
                }
                put(year / 100, at: 0)
                put(year % 100, at: 2)
                text[4] = UInt8(ascii: "-")
                put(month, at: 5)
                text[7] = UInt8(ascii: "-")
                put(dayOfMonth, at: 8)
                text[10] = UInt8(ascii: "T")
                put(seconds / 3600, at: 11)
                text[13] = UInt8(ascii: ":")
                put(seconds / 60 % 60, at: 14)
                text[16] = UInt8(ascii: ":")
                put(seconds % 60, at: 17)
                text[19] = UInt8(ascii: ".")
                text[20] = UInt8(ascii: "0") + UInt8(truncatingIfNeeded: millisOfSecond / 100)
                put(millisOfSecond % 100, at: 21)
                text[23] = UInt8(ascii: "Z")
            }
        }
    }

    /// Reads back what `iso8601` writes (`YYYY-MM-DDTHH:MM:SS.mmmZ`, milliseconds optional); nil for anything else.
    public static func parseISO8601(_ text: String) -> Date? {
        let bytes = Array(text.utf8)
        guard bytes.count == 20 || bytes.count == 24, bytes[4] == UInt8(ascii: "-"), bytes[7] == UInt8(ascii: "-"),
            bytes[10] == UInt8(ascii: "T"), bytes[13] == UInt8(ascii: ":"), bytes[16] == UInt8(ascii: ":"),
            bytes[bytes.count - 1] == UInt8(ascii: "Z")
        else { return nil }
        func number(_ range: Range<Int>) -> Int64? {
            var value: Int64 = 0
            for index in range {
                let digit = bytes[index] &- UInt8(ascii: "0")
                guard digit < 10 else { return nil }
                value = value * 10 + Int64(digit)
            }
            return value
        }
        guard let year = number(0..<4), let month = number(5..<7), let day = number(8..<10), let hour = number(11..<13),
            let minute = number(14..<16), let second = number(17..<19), (1...12).contains(month), (1...31).contains(day),
            hour < 24, minute < 60, second < 61
        else { return nil }
        var millis: Int64 = 0
        if bytes.count == 24 {
            guard bytes[19] == UInt8(ascii: "."), let fraction = number(20..<23) else { return nil }
            millis = fraction
        }
        let days = daysSinceEpoch(year: year, month: month, day: day)
        let total = ((days * 86_400 + hour * 3600 + minute * 60 + second) * 1000 + millis)
        return Date(timeIntervalSince1970: Double(total) / 1000)
    }

    /// `YYYY-MM-DD` in UTC, the name of a day's log folder.
    public static func day(_ date: Date) -> String {
        String(iso8601(date).prefix(10))
    }

    /// Days since 1970-01-01 in UTC: cheap to compare when only a change of day matters.
    public static func dayNumber(_ date: Date) -> Int64 {
        Int64((date.timeIntervalSince1970 / 86_400).rounded(.down))
    }

    /// `HH:MM:SS.mmm` in UTC, for log lines.
    public static func timeOfDay(_ date: Date) -> String {
        String(iso8601(date).dropFirst(11).dropLast())
    }

    /// Days from 1970-01-01 to a date of the proleptic Gregorian calendar (Howard Hinnant's `days_from_civil`).
    static func daysSinceEpoch(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    /// Year, month (1-12) and day (1-31) of a day counted from 1970-01-01, in the proleptic Gregorian calendar
    /// (Howard Hinnant's `civil_from_days`).
    static func civilDate(daysSinceEpoch: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let shifted = daysSinceEpoch + 719_468
        let era = (shifted >= 0 ? shifted : shifted - 146_096) / 146_097
        let dayOfEra = shifted - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        return (year, month, day)
    }

    /// "000102…99": two digits at a time instead of a division per digit (this runs for every recorded event).
    private static let digitPairs: [UInt8] = (0..<100).flatMap { [UInt8(ascii: "0") + UInt8($0 / 10), UInt8(ascii: "0") + UInt8($0 % 10)] }
}
