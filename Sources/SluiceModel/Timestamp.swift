import Foundation

/// UTC ISO-8601 with milliseconds, `2026-11-30T23:18:21.123Z`, formatted by hand: it runs for every recorded
/// chunk, and `ISO8601DateFormatter` is an order of magnitude slower.
public enum Timestamp {
    public static func iso8601(_ date: Date) -> String {
        let totalMillis = Int64((date.timeIntervalSince1970 * 1000).rounded())
        var seconds = time_t(totalMillis >= 0 ? totalMillis / 1000 : (totalMillis - 999) / 1000)
        let millis = Int(totalMillis - Int64(seconds) * 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return pad(Int(parts.tm_year) + 1900, 4) + "-" + pad(Int(parts.tm_mon) + 1, 2) + "-" + pad(Int(parts.tm_mday), 2)
            + "T" + pad(Int(parts.tm_hour), 2) + ":" + pad(Int(parts.tm_min), 2) + ":" + pad(Int(parts.tm_sec), 2)
            + "." + pad(millis, 3) + "Z"
    }

    /// `YYYY-MM-DD` in UTC, the name of a day's log folder.
    public static func day(_ date: Date) -> String {
        String(iso8601(date).prefix(10))
    }

    /// `HH:MM:SS.mmm` in UTC, for log lines.
    public static func timeOfDay(_ date: Date) -> String {
        String(iso8601(date).dropFirst(11).dropLast())
    }

    static func pad(_ value: Int, _ width: Int) -> String {
        let text = String(value)
        return text.count >= width ? text : String(repeating: "0", count: width - text.count) + text
    }
}
