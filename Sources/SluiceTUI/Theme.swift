import Foundation
import Yams

/// What a piece of the screen means; themes give each role a style, views never pick colours.
public enum Role: String, CaseIterable, Sendable {
    case normal, dim, header, tab
    case tabActive = "tab_active"
    case status, selection, marked, held, error, blocked, edited, up, down
    case riskLow = "risk_low"
    case riskMedium = "risk_medium"
    case riskHigh = "risk_high"
    case riskCritical = "risk_critical"
    case prompt
    case promptError = "prompt_error"
    case hexOffset = "hex_offset"
    case hexCursor = "hex_cursor"
    /// SQL in the Commands view.
    case sqlKeyword = "sql_keyword"
    case sqlString = "sql_string"
    case sqlNumber = "sql_number"
    case sqlComment = "sql_comment"
}

/// The eight ANSI colours, or the terminal's own.
public enum ThemeColor: String, Sendable, CaseIterable {
    case `default`, black, red, green, yellow, blue, magenta, cyan, white

    /// ncurses colour number; -1 is the terminal default (`use_default_colors`).
    var cursesNumber: Int16 {
        switch self {
        case .default: return -1
        case .black: return 0
        case .red: return 1
        case .green: return 2
        case .yellow: return 3
        case .blue: return 4
        case .magenta: return 5
        case .cyan: return 6
        case .white: return 7
        }
    }
}

public enum ThemeAttribute: String, Sendable, CaseIterable {
    case bold, reverse, underline, dim
}

public struct Style: Sendable, Equatable {
    public var foreground: ThemeColor = .default
    public var background: ThemeColor = .default
    public var attributes: Set<ThemeAttribute> = []
}

/// A set of styles by role, read from YAML (`themes/*.yaml`, built in, or `<data-dir>/themes/`).
public struct Theme: Sendable, Equatable {
    public var name: String
    public var styles: [Role: Style]

    public func style(_ role: Role) -> Style {
        styles[role] ?? Style()
    }

    public static let builtInNames = BuiltInThemes.yaml.keys.sorted()

    /// A built-in theme, or a file `<directory>/NAME.yaml` that overrides or adds to them.
    public static func named(_ name: String, searching directory: String?) throws(ThemeError) -> Theme {
        if let directory {
            let path = (directory as NSString).appendingPathComponent("\(name).yaml")
            if let text = try? String(contentsOfFile: path, encoding: .utf8) {
                return try parse(yaml: text, source: path)
            }
        }
        guard let text = BuiltInThemes.yaml[name] else {
            throw ThemeError(message: "unknown theme '\(name)' (built in: \(builtInNames.joined(separator: ", ")))")
        }
        return try parse(yaml: text, source: "theme \(name)")
    }

    /// The monochrome theme, for terminals without colour and for NO_COLOR.
    public static var mono: Theme {
        (try? named("mono", searching: nil)) ?? Theme(name: "mono", styles: [:])
    }

    public static func parse(yaml: String, source: String) throws(ThemeError) -> Theme {
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch {
            throw ThemeError(message: "\(source): not valid YAML")
        }
        guard let mapping = root?.mapping else { throw ThemeError(message: "\(source): expected name: and roles:") }
        let name = mapping["name"]?.string ?? "custom"
        guard let roles = mapping["roles"]?.mapping else { throw ThemeError(message: "\(source): missing roles:") }
        var styles: [Role: Style] = [:]
        for (key, value) in roles {
            let line = key.mark.map { ":\($0.line)" } ?? ""
            guard let roleName = key.string, let role = Role(rawValue: roleName) else {
                throw ThemeError(
                    message: "\(source)\(line): unknown role '\(key.string ?? "?")' (known: \(Role.allCases.map(\.rawValue).joined(separator: ", ")))"
                )
            }
            var style = Style()
            if let fields = value.mapping {
                for (fieldKey, fieldValue) in fields {
                    switch fieldKey.string {
                    case "fg", "bg":
                        guard let text = fieldValue.string, let color = ThemeColor(rawValue: text) else {
                            throw ThemeError(message: "\(source)\(line): \(roleName): unknown colour '\(fieldValue.string ?? "?")'")
                        }
                        if fieldKey.string == "fg" { style.foreground = color } else { style.background = color }
                    case "attrs":
                        for item in fieldValue.sequence.map(Array.init) ?? [] {
                            guard let text = item.string, let attribute = ThemeAttribute(rawValue: text) else {
                                throw ThemeError(message: "\(source)\(line): \(roleName): unknown attribute '\(item.string ?? "?")'")
                            }
                            style.attributes.insert(attribute)
                        }
                    default:
                        throw ThemeError(message: "\(source)\(line): \(roleName): unknown field '\(fieldKey.string ?? "?")' (fg, bg, attrs)")
                    }
                }
            } else if value.scalar?.string.isEmpty == false {
                throw ThemeError(message: "\(source)\(line): \(roleName): expected { fg:, bg:, attrs: }")
            }
            styles[role] = style
        }
        return Theme(name: name, styles: styles)
    }
}

public struct ThemeError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}
