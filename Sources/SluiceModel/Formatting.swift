/// Human-readable sizes and durations for tables and log lines.
public enum Formatting {
    /// `512 B`, `1.5 KiB`, `64.0 MiB`.
    public static func bytes(_ count: Int64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(count)
        var unit = 0
        while value >= 1024, unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        if unit == 0 { return "\(count) B" }
        return String(format1(value)) + " " + units[unit]
    }

    /// `850ms`, `2.35s`, `4m05s`, `2h03m`.
    public static func duration(seconds: Double) -> String {
        if seconds < 1 { return "\(Int((seconds * 1000).rounded()))ms" }
        if seconds < 60 { return format2(seconds) + "s" }
        let total = Int(seconds)
        if total < 3600 { return "\(total / 60)m" + twoDigits(total % 60) + "s" }
        return "\(total / 3600)h" + twoDigits((total % 3600) / 60) + "m"
    }

    /// How a replayed flow is named where a client address would be: `replay of #3`, in the TUI and the CLI alike.
    public static func replay(of original: FlowID) -> String {
        "replay of #\(original)"
    }

    /// A configured number of seconds as the operator wrote it: `30 s`, `0.5 s`.
    public static func seconds(_ value: Double) -> String {
        if value == value.rounded(), abs(value) < 1e15 { return "\(Int64(value)) s" }
        return "\(value) s"
    }

    static func format1(_ value: Double) -> String {
        let tenths = Int((value * 10).rounded())
        return "\(tenths / 10).\(tenths % 10)"
    }

    static func format2(_ value: Double) -> String {
        let hundredths = Int((value * 100).rounded())
        return "\(hundredths / 100)." + twoDigits(hundredths % 100)
    }

    static func twoDigits(_ value: Int) -> String {
        value < 10 ? "0\(value)" : "\(value)"
    }
}

extension String {
    /// The text without the spaces at its end (table rows and screen lines padded to a width).
    public func trimmingTrailingSpaces() -> String {
        var copy = self
        while copy.last == " " { copy.removeLast() }
        return copy
    }
}
