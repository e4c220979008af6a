import Foundation

/// UTC ISO-8601 with milliseconds, `2026-11-30T23:18:21.123Z`, formatted by hand: it runs for every recorded
/// event, and `ISO8601DateFormatter` (or even `gmtime_r` and string padding) costs an order of magnitude more.
public enum Timestamp {
    public static func iso8601(_ date: Date) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(24)
        appendISO8601(date, to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Appends `YYYY-MM-DDTHH:MM:SS.mmmZ`. Years before 0 or after 9999 are not written correctly.
    public static func appendISO8601(_ date: Date, to bytes: inout [UInt8]) {
        let totalMillis = Int64((date.timeIntervalSince1970 * 1000).rounded())
        let millisPerDay: Int64 = 86_400_000
        let day = totalMillis >= 0 ? totalMillis / millisPerDay : (totalMillis - millisPerDay + 1) / millisPerDay
        let millisOfDay = totalMillis - day * millisPerDay
        let (year, month, dayOfMonth) = civilDate(daysSinceEpoch: day)
        let seconds = millisOfDay / 1000
        append(year, width: 4, to: &bytes)
        bytes.append(UInt8(ascii: "-"))
        append(month, width: 2, to: &bytes)
        bytes.append(UInt8(ascii: "-"))
        append(dayOfMonth, width: 2, to: &bytes)
        bytes.append(UInt8(ascii: "T"))
        append(seconds / 3600, width: 2, to: &bytes)
        bytes.append(UInt8(ascii: ":"))
        append(seconds / 60 % 60, width: 2, to: &bytes)
        bytes.append(UInt8(ascii: ":"))
        append(seconds % 60, width: 2, to: &bytes)
        bytes.append(UInt8(ascii: "."))
        append(millisOfDay % 1000, width: 3, to: &bytes)
        bytes.append(UInt8(ascii: "Z"))
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

    private static func append(_ value: Int64, width: Int, to bytes: inout [UInt8]) {
        var divisor: Int64 = 1
        for _ in 1..<width { divisor *= 10 }
        var rest = value
        while divisor > 0 {
            bytes.append(UInt8(ascii: "0") + UInt8(truncatingIfNeeded: rest / divisor % 10))
            rest %= divisor
            divisor /= 10
        }
    }
}
