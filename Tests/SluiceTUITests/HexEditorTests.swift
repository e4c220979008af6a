import Testing

@testable import SluiceTUI

@Suite struct HexEditorTests {
    @Test func overwriteTwoNibblesPerByteAndAdvance() {
        var editor = HexEditor(Array("my secret".utf8))
        for digit in "4d59" {
            let accepted = editor.type(digit)
            #expect(accepted)
        }
        #expect(editor.bytes == Array("MY secret".utf8))
        #expect(editor.cursor == 2)
        #expect(editor.isEdited)
        let acceptedZ = editor.type("z")
        #expect(!acceptedZ, "not a hex digit")
    }

    @Test func asciiColumnTypesText() {
        var editor = HexEditor(Array("abc".utf8))
        editor.toggleColumn()
        editor.move(by: 1)
        let acceptedX = editor.type("X")
        #expect(acceptedX)
        #expect(editor.bytes == Array("aXc".utf8))
        let acceptedE = editor.type("é")
        #expect(!acceptedE, "one byte per cell")
    }

    @Test func insertDeleteBackspaceAndAppend() {
        var editor = HexEditor([0x01, 0x02])
        editor.toggleInsert()
        editor.type("f")
        editor.type("f")
        #expect(editor.bytes == [0xff, 0x01, 0x02])
        editor.delete()
        #expect(editor.bytes == [0xff, 0x02])
        editor.backspace()
        #expect(editor.bytes == [0x02])
        editor.moveTo(99)
        #expect(editor.cursor == 1, "clamped to the append position")
        editor.toggleInsert()
        editor.type("a")
        editor.type("b")
        #expect(editor.bytes == [0x02, 0xab], "typing at the end appends even in overwrite mode")
    }

    @Test func lineBreaksAreInsertedEvenInOverwriteModeAndUndoneInOneStep() {
        var editor = HexEditor(Array("GET / HTTP/1.1\r\n\r\n".utf8))
        editor.toggleColumn()
        editor.moveTo(16)  // after the request line's CR LF
        for character in "X-Added: yes" { editor.type(character) }
        editor.insertLineBreak()
        #expect(String(decoding: editor.bytes, as: UTF8.self) == "GET / HTTP/1.1\r\nX-Added: yes\r\n", "typing overwrote, the break inserted")
        #expect(editor.cursor == 30)
        editor.undo()
        #expect(String(decoding: editor.bytes, as: UTF8.self) == "GET / HTTP/1.1\r\nX-Added: yes")
    }

    @Test func undoRestoresEachStep() {
        var editor = HexEditor([0x00, 0x00])
        editor.type("1")
        editor.type("2")
        editor.type("3")
        editor.type("4")
        #expect(editor.bytes == [0x12, 0x34])
        editor.undo()
        #expect(editor.bytes == [0x12, 0x00])
        editor.undo()
        #expect(editor.bytes == [0x00, 0x00])
        #expect(!editor.canUndo)
        #expect(!editor.isEdited)
        editor.undo()
        #expect(editor.bytes == [0x00, 0x00])
    }

    @Test func movementIsClamped() {
        var editor = HexEditor([1, 2, 3])
        editor.move(by: -5)
        #expect(editor.cursor == 0)
        editor.move(by: 16)
        #expect(editor.cursor == 3)
    }

    @Test func emptyMessageCanBeWritten() {
        var editor = HexEditor([])
        editor.type("4")
        editor.type("1")
        #expect(editor.bytes == [0x41])
    }
}
