extension TerminalScreen {
    /// Where the byte parser is, between chunks: any sequence can be cut anywhere by the SSH channel.
    ///
    /// The states follow the DEC/xterm parser (vt100.net's "DEC ANSI parser" diagram) with the parts shells use;
    /// strings (OSC titles, DCS) are skipped byte by byte, never stored, so no sequence makes it allocate.
    struct Parser: Sendable {
        enum State: Sendable {
            case ground
            case escape
            case escapeIntermediate
            case csi
            case csiIgnore
            /// OSC, DCS, SOS, PM, APC: skipped until BEL (OSC only) or ST.
            case string
            /// ESC seen inside a string: `\` ends it.
            case stringEscape
        }

        var state = State.ground
        /// CSI parameters so far (at most `maxParameters`, each clamped to `maxParameter`).
        var parameters: [Int] = []
        var current: Int?
        var privateMarker: UInt8 = 0
        var intermediate: UInt8 = 0
        /// A UTF-8 character in progress in the ground state.
        var scalar: UInt32 = 0
        var needed = 0
        var lowerBound: UInt8 = 0x80
        var upperBound: UInt8 = 0xBF

        static let maxParameters = 16
        static let maxParameter = 65_535

        mutating func resetSequence() {
            parameters.removeAll(keepingCapacity: true)
            current = nil
            privateMarker = 0
            intermediate = 0
        }
    }

    /// Feeds bytes the server sent to the terminal.
    public mutating func feed(_ bytes: some Collection<UInt8>) {
        for byte in bytes { feed(byte) }
    }

    mutating func feed(_ byte: UInt8) {
        if parser.needed > 0 {
            if byte >= parser.lowerBound && byte <= parser.upperBound {
                parser.scalar = parser.scalar << 6 | UInt32(byte & 0x3F)
                parser.needed -= 1
                parser.lowerBound = 0x80
                parser.upperBound = 0xBF
                if parser.needed == 0 { printDecoded(parser.scalar) }
                return
            }
            // A character cut short: its start shows as U+FFFD, and this byte is read afresh.
            parser.needed = 0
            print(0xFFFD)
        }
        // C0 controls act in every state but strings (CAN and SUB abort a sequence, ESC starts a new one).
        if byte < 0x20 || byte == 0x7F {
            control(byte)
            return
        }
        switch parser.state {
        case .ground:
            ground(byte)
        case .escape:
            escape(byte)
        case .escapeIntermediate:
            if byte >= 0x30 && byte <= 0x7E { parser.state = .ground }  // charset designations and the like: ignored
        case .csi:
            csi(byte)
        case .csiIgnore:
            if byte >= 0x40 && byte <= 0x7E { parser.state = .ground }
        case .string:
            break
        case .stringEscape:
            parser.state = byte == UInt8(ascii: "\\") ? .ground : .string
        }
    }

    private mutating func control(_ byte: UInt8) {
        switch parser.state {
        case .string:
            if byte == 0x07 {
                parser.state = .ground  // BEL ends an OSC (xterm's title sequences)
            } else if byte == 0x1B {
                parser.state = .stringEscape
            } else if byte == 0x18 || byte == 0x1A {
                parser.state = .ground
            }
            return
        case .stringEscape:
            parser.state = byte == 0x1B ? .stringEscape : .string
            return
        default:
            break
        }
        switch byte {
        case 0x1B:
            parser.resetSequence()
            parser.state = .escape
        case 0x18, 0x1A:
            parser.state = .ground
        case 0x08:
            pendingWrap = false
            if cursorColumn > 0 { cursorColumn -= 1 }
        case 0x09:
            pendingWrap = false
            cursorColumn = min((cursorColumn / 8 + 1) * 8, columns - 1)
        case 0x0A, 0x0B, 0x0C:
            lineFeed()
        case 0x0D:
            pendingWrap = false
            cursorColumn = 0
        default:
            break  // BEL, SO/SI (charset shifts) and the rest: nothing on screen
        }
    }

    private mutating func ground(_ byte: UInt8) {
        switch byte {
        case 0x20..<0x7F:
            print(UInt32(byte))
        case 0xC2...0xDF:
            startCharacter(byte & 0x1F, needed: 1)
        case 0xE0:
            startCharacter(byte & 0x0F, needed: 2, lower: 0xA0)
        case 0xE1...0xEC, 0xEE...0xEF:
            startCharacter(byte & 0x0F, needed: 2)
        case 0xED:
            startCharacter(byte & 0x0F, needed: 2, upper: 0x9F)
        case 0xF0:
            startCharacter(byte & 0x07, needed: 3, lower: 0x90)
        case 0xF1...0xF3:
            startCharacter(byte & 0x07, needed: 3)
        case 0xF4:
            startCharacter(byte & 0x07, needed: 3, upper: 0x8F)
        default:
            print(0xFFFD)
        }
    }

    private mutating func startCharacter(_ bits: UInt8, needed: Int, lower: UInt8 = 0x80, upper: UInt8 = 0xBF) {
        parser.scalar = UInt32(bits)
        parser.needed = needed
        parser.lowerBound = lower
        parser.upperBound = upper
    }

    /// A decoded character: C1 controls (U+0080…U+009F) are not shown.
    private mutating func printDecoded(_ value: UInt32) {
        if value >= 0x80 && value < 0xA0 { return }
        print(value)
    }

    private mutating func escape(_ byte: UInt8) {
        parser.state = .ground
        switch byte {
        case UInt8(ascii: "["):
            parser.state = .csi
        case UInt8(ascii: "]"), UInt8(ascii: "P"), UInt8(ascii: "X"), UInt8(ascii: "^"), UInt8(ascii: "_"):
            parser.state = .string
        case 0x20...0x2F:
            parser.state = .escapeIntermediate
        case UInt8(ascii: "7"):
            saveCursor()
        case UInt8(ascii: "8"):
            restoreCursor()
        case UInt8(ascii: "D"):
            lineFeed()
        case UInt8(ascii: "E"):
            cursorColumn = 0
            lineFeed()
        case UInt8(ascii: "M"):
            reverseIndex()
        case UInt8(ascii: "c"):
            reset()
        default:
            break  // keypad modes, tab set and the rest: nothing on screen
        }
    }

    private mutating func csi(_ byte: UInt8) {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"):
            guard parser.intermediate == 0 else {
                parser.state = .csiIgnore
                return
            }
            let digit = Int(byte - UInt8(ascii: "0"))
            parser.current = min((parser.current ?? 0) * 10 + digit, Parser.maxParameter)
        case UInt8(ascii: ";"), UInt8(ascii: ":"):
            if parser.parameters.count < Parser.maxParameters { parser.parameters.append(parser.current ?? 0) }
            parser.current = nil
        case 0x3C...0x3F:
            // A private marker only counts before the parameters.
            if parser.parameters.isEmpty && parser.current == nil && parser.privateMarker == 0 {
                parser.privateMarker = byte
            } else {
                parser.state = .csiIgnore
            }
        case 0x20...0x2F:
            parser.intermediate = byte
        case 0x40...0x7E:
            if let current = parser.current, parser.parameters.count < Parser.maxParameters {
                parser.parameters.append(current)
            }
            parser.state = .ground
            dispatchCSI(byte)
        default:
            parser.state = .csiIgnore
        }
    }

    /// Parameter `index`, with 0 or a missing one read as `defaultValue` (as the cursor moves want).
    private func parameter(_ index: Int, default defaultValue: Int = 1) -> Int {
        guard index < parser.parameters.count, parser.parameters[index] != 0 else { return defaultValue }
        return parser.parameters[index]
    }

    private mutating func dispatchCSI(_ final: UInt8) {
        if parser.privateMarker == UInt8(ascii: "?") {
            if final == UInt8(ascii: "h") || final == UInt8(ascii: "l") {
                for mode in parser.parameters { setPrivateMode(mode, final == UInt8(ascii: "h")) }
            }
            return
        }
        guard parser.privateMarker == 0, parser.intermediate == 0 else { return }
        let count = parameter(0)
        switch final {
        case UInt8(ascii: "@"):
            pendingWrap = false
            insertCells(count)
        case UInt8(ascii: "A"):
            moveVertically(-count)
        case UInt8(ascii: "B"), UInt8(ascii: "e"):
            moveVertically(count)
        case UInt8(ascii: "C"), UInt8(ascii: "a"):
            moveTo(row: cursorRow, column: cursorColumn + count)
        case UInt8(ascii: "D"):
            moveTo(row: cursorRow, column: cursorColumn - count)
        case UInt8(ascii: "E"):
            moveVertically(count)
            cursorColumn = 0
        case UInt8(ascii: "F"):
            moveVertically(-count)
            cursorColumn = 0
        case UInt8(ascii: "G"), UInt8(ascii: "`"):
            moveTo(row: cursorRow, column: count - 1)
        case UInt8(ascii: "H"), UInt8(ascii: "f"):
            moveTo(row: parameter(0) - 1, column: parameter(1) - 1)
        case UInt8(ascii: "d"):
            moveTo(row: count - 1, column: cursorColumn)
        case UInt8(ascii: "J"):
            eraseInDisplay(parameter(0, default: 0))
        case UInt8(ascii: "K"):
            eraseInLine(parameter(0, default: 0))
        case UInt8(ascii: "L"):
            pendingWrap = false
            insertLines(count)
        case UInt8(ascii: "M"):
            pendingWrap = false
            deleteLines(count)
        case UInt8(ascii: "P"):
            pendingWrap = false
            deleteCells(count)
        case UInt8(ascii: "X"):
            pendingWrap = false
            clearCells(row: cursorRow, columns: cursorColumn..<(cursorColumn + min(count, columns)))
        case UInt8(ascii: "S"):
            scrollUp(min(count, rows))
        case UInt8(ascii: "T"):
            scrollDown(min(count, rows))
        case UInt8(ascii: "r"):
            let top = parameter(0) - 1
            let bottom = min(parameter(1, default: rows), rows) - 1
            if top < bottom {
                scrollTop = top
                scrollBottom = bottom
                moveTo(row: 0, column: 0)
            }
        case UInt8(ascii: "s"):
            if parser.parameters.isEmpty { saveCursor() }
        case UInt8(ascii: "u"):
            restoreCursor()
        case UInt8(ascii: "h"), UInt8(ascii: "l"):
            if parser.parameters.contains(4) { insertMode = final == UInt8(ascii: "h") }
        default:
            break  // SGR, device status and the rest change nothing this screen keeps
        }
    }

    private mutating func moveTo(row: Int, column: Int) {
        pendingWrap = false
        cursorRow = min(max(row, 0), rows - 1)
        cursorColumn = min(max(column, 0), columns - 1)
    }

    /// CUU/CUD stop at the scroll region's margins when they start inside it.
    private mutating func moveVertically(_ delta: Int) {
        pendingWrap = false
        if delta < 0 {
            let limit = cursorRow >= scrollTop ? scrollTop : 0
            cursorRow = max(cursorRow + delta, limit)
        } else {
            let limit = cursorRow <= scrollBottom ? scrollBottom : rows - 1
            cursorRow = min(cursorRow + delta, limit)
        }
    }

    private mutating func setPrivateMode(_ mode: Int, _ on: Bool) {
        switch mode {
        case 1: applicationCursorKeys = on
        case 7: autowrap = on
        case 47, 1047, 1049: setAlternateScreen(on, mode: mode)
        case 1048: if on { saveCursor() } else { restoreCursor() }
        case 2004: bracketedPaste = on
        default: break
        }
    }
}
