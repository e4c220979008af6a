/// Editing a held message's bytes: a cursor over the hex or the ASCII column, overwrite or insert, delete,
/// undo. Pure state, so every keystroke is testable without a terminal.
public struct HexEditor: Equatable, Sendable {
    public enum Column: Sendable, Equatable {
        case hex, ascii
    }

    public let original: [UInt8]
    public private(set) var bytes: [UInt8]
    /// Byte index; equal to `bytes.count` at the append position.
    public private(set) var cursor = 0
    /// In the hex column, whether the next digit replaces the high nibble.
    public private(set) var atHighNibble = true
    public private(set) var column: Column = .hex
    public private(set) var insertMode = false
    private var undoStack: [(bytes: [UInt8], cursor: Int)] = []

    public init(_ bytes: [UInt8]) {
        original = bytes
        self.bytes = bytes
    }

    public static func == (lhs: HexEditor, rhs: HexEditor) -> Bool {
        lhs.original == rhs.original && lhs.bytes == rhs.bytes && lhs.cursor == rhs.cursor && lhs.column == rhs.column
            && lhs.insertMode == rhs.insertMode && lhs.atHighNibble == rhs.atHighNibble
    }

    public var isEdited: Bool { bytes != original }
    public var canUndo: Bool { !undoStack.isEmpty }

    /// Types a character in the current column: a hex digit, or any byte-sized character in ASCII.
    /// Returns false when the character does not fit the column.
    @discardableResult
    public mutating func type(_ character: Character) -> Bool {
        switch column {
        case .hex:
            guard let digit = character.hexDigitValue else { return false }
            typeNibble(UInt8(digit))
        case .ascii:
            guard let ascii = character.asciiValue, (0x20...0x7e).contains(ascii) else { return false }
            saveUndo()
            put(ascii)
            cursor += 1
        }
        return true
    }

    private mutating func typeNibble(_ value: UInt8) {
        if atHighNibble {
            saveUndo()
            if insertMode || cursor == bytes.count {
                bytes.insert(value << 4, at: cursor)
            } else {
                bytes[cursor] = (bytes[cursor] & 0x0f) | (value << 4)
            }
            atHighNibble = false
        } else {
            bytes[cursor] = (bytes[cursor] & 0xf0) | value
            cursor += 1
            atHighNibble = true
        }
    }

    private mutating func put(_ byte: UInt8) {
        if insertMode || cursor == bytes.count {
            bytes.insert(byte, at: cursor)
        } else {
            bytes[cursor] = byte
        }
    }

    /// Inserts CR LF at the cursor, also in overwrite mode: how a line is added to text such as an HTTP head,
    /// where Enter would forward the message.
    public mutating func insertLineBreak() {
        saveUndo()
        bytes.insert(contentsOf: [0x0d, 0x0a], at: cursor)
        cursor += 2
        atHighNibble = true
    }

    /// Removes the byte under the cursor.
    public mutating func delete() {
        guard cursor < bytes.count else { return }
        saveUndo()
        bytes.remove(at: cursor)
        atHighNibble = true
    }

    /// Removes the byte before the cursor.
    public mutating func backspace() {
        guard cursor > 0 else { return }
        saveUndo()
        cursor -= 1
        bytes.remove(at: cursor)
        atHighNibble = true
    }

    public mutating func move(by offset: Int) {
        cursor = max(0, min(bytes.count, cursor + offset))
        atHighNibble = true
    }

    public mutating func moveTo(_ position: Int) {
        cursor = max(0, min(bytes.count, position))
        atHighNibble = true
    }

    public mutating func toggleColumn() {
        column = column == .hex ? .ascii : .hex
        atHighNibble = true
    }

    public mutating func toggleInsert() {
        insertMode.toggle()
    }

    public mutating func undo() {
        guard let last = undoStack.popLast() else { return }
        bytes = last.bytes
        cursor = min(last.cursor, bytes.count)
        atHighNibble = true
    }

    private mutating func saveUndo() {
        undoStack.append((bytes, cursor))
        if undoStack.count > 1000 { undoStack.removeFirst() }
    }
}
