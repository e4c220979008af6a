import CNCurses
import Foundation

/// The only code that calls ncurses. Colours come from the theme by role; the terminal is restored on every way
/// out: `close()`, SIGINT/SIGTERM (the app quits through its loop), and a crash signal (restored, then re-raised).
public final class Terminal: Canvas {
    private var attributes: [Role: attr_t] = [:]
    private var isOpen = false
    public private(set) var usesColor = false

    public init(theme: Theme) {
        setlocale(LC_ALL, "")
        initscr()
        isOpen = true
        Terminal.installCrashRestore()
        raw()
        noecho()
        nonl()
        intrflush(sluice_stdscr(), false)
        keypad(sluice_stdscr(), true)
        set_escdelay(25)
        curs_set(0)
        let noColor = ProcessInfo.processInfo.environment["NO_COLOR"].map { !$0.isEmpty } ?? false
        usesColor = has_colors() && !noColor && theme.name != "mono"
        apply(usesColor ? theme : Theme.mono)
    }

    deinit {
        close()
    }

    /// Leaves curses mode; safe to call more than once.
    public func close() {
        guard isOpen else { return }
        isOpen = false
        endwin()
    }

    private func apply(_ theme: Theme) {
        if usesColor {
            start_color()
            use_default_colors()
        }
        for (index, role) in Role.allCases.enumerated() {
            let style = theme.style(role)
            var attribute = sluice_a_normal()
            if usesColor {
                let pair = Int16(index + 1)
                init_pair(pair, style.foreground.cursesNumber, style.background.cursesNumber)
                attribute |= sluice_color_pair(pair)
            }
            for item in style.attributes {
                switch item {
                case .bold: attribute |= sluice_a_bold()
                case .reverse: attribute |= sluice_a_reverse()
                case .underline: attribute |= sluice_a_underline()
                case .dim: attribute |= sluice_a_dim()
                }
            }
            attributes[role] = attribute
        }
    }

    public var height: Int { Int(sluice_lines()) }
    public var width: Int { Int(sluice_cols()) }

    public func clear() {
        erase()
    }

    public func put(_ row: Int, _ column: Int, _ text: String, _ role: Role) {
        guard row >= 0, row < height, column >= 0, column < width else { return }
        // Clip by characters; never write the bottom-right cell, which scrolls some terminals.
        var room = width - column
        if row == height - 1 { room -= 1 }
        guard room > 0 else { return }
        let text = text.visible  // peer-controlled text must not drive the terminal
        let clipped = text.count > room ? String(text.prefix(room)) : text
        _ = sluice_draw(Int32(row), Int32(column), clipped, -1, attributes[role] ?? sluice_a_normal())
    }

    public func fill(_ row: Int, _ role: Role) {
        guard row >= 0, row < height else { return }
        let count = row == height - 1 ? width - 1 : width
        sluice_fill(Int32(row), 0, Int32(count), attributes[role] ?? sluice_a_normal())
    }

    public func present() {
        refresh()
    }

    /// Waits up to `milliseconds` for a key; nil on timeout.
    public func readKey(timeoutMilliseconds milliseconds: Int) -> Key? {
        timeout(Int32(milliseconds))
        var value: wint_t = 0
        let result = wget_wch(sluice_stdscr(), &value)
        if result == ERR { return nil }
        if result == KEY_CODE_YES { return Self.functionKey(Int32(value)) }
        return Self.characterKey(UInt32(value))
    }

    static func functionKey(_ code: Int32) -> Key? {
        switch code {
        case KEY_UP: return .up
        case KEY_DOWN: return .down
        case KEY_LEFT: return .left
        case KEY_RIGHT: return .right
        case KEY_PPAGE: return .pageUp
        case KEY_NPAGE: return .pageDown
        case KEY_HOME: return .home
        case KEY_END: return .end
        case KEY_ENTER: return .enter
        case KEY_BACKSPACE: return .backspace
        case KEY_DC: return .delete
        case KEY_IC: return .insert
        case KEY_BTAB: return .backTab
        case sluice_key_resize(): return .resize
        default: return nil
        }
    }

    static func characterKey(_ value: UInt32) -> Key? {
        switch value {
        case 9: return .tab
        case 10, 13: return .enter
        case 27: return .escape
        case 8, 127: return .backspace
        case 1...26: return .control(Character(Unicode.Scalar(value + 96) ?? "?"))
        default:
            guard let scalar = Unicode.Scalar(value) else { return nil }
            return .character(Character(scalar))
        }
    }

    /// On a crash signal, give the terminal back before the process dies, then die as we would have.
    private static func installCrashRestore() {
        for number in [SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP] {
            signal(number) { received in
                endwin()
                signal(received, SIG_DFL)
                raise(received)
            }
        }
    }
}
