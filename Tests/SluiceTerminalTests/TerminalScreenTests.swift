import SluiceTestSupport
import Testing

@testable import SluiceTerminal

/// The headless terminal reads back what xterm would show, and survives whatever a hostile server sends.
@Suite struct TerminalScreenTests {
    private func screen(_ output: String, columns: Int = 20, rows: Int = 5) -> TerminalScreen {
        var screen = TerminalScreen(columns: columns, rows: rows)
        screen.feed(Array(output.utf8))
        return screen
    }

    @Test func printsAndMovesWithCarriageReturnLineFeedAndBackspace() {
        let result = screen("hello\r\nworld\u{8}\u{8}LD\rW")
        #expect(result.visibleText == ["hello", "WorLD", "", "", ""])
        #expect(result.cursorRow == 1 && result.cursorColumn == 1)
    }

    @Test func cursorMovesEraseAndInsertDelete() {
        #expect(screen("abcdef\u{1b}[3D\u{1b}[K").visibleText[0] == "abc")
        #expect(screen("abcdef\u{1b}[1G\u{1b}[2@XY").visibleText[0] == "XYabcdef")
        #expect(screen("abcdef\u{1b}[2G\u{1b}[2P").visibleText[0] == "adef")
        #expect(screen("abcdef\u{1b}[2G\u{1b}[2X").visibleText[0] == "a  def")
        #expect(screen("abc\u{1b}[2;5Hx\u{1b}[1;2fy").visibleText[0...1] == ["ayc", "    x"])
        #expect(screen("abc\r\ndef\u{1b}[A\u{1b}[1K").visibleText[0...1] == ["", "def"])
        #expect(screen("a\r\nb\r\nc\u{1b}[2;1H\u{1b}[J").visibleText[0...2] == ["a", "", ""])
        #expect(screen("a\r\nb\r\nc\u{1b}[1;1H\u{1b}[L").visibleText[0...3] == ["", "a", "b", "c"])
        #expect(screen("a\r\nb\r\nc\u{1b}[1;1H\u{1b}[M").visibleText[0...2] == ["b", "c", ""])
        #expect(screen("\u{1b}[3dz").visibleText[2] == "z")
        #expect(screen("ab\r\u{1b}[4hX\u{1b}[4lY").visibleText[0] == "XYb")
    }

    @Test func wrapsAtTheRightMarginAndRemembersIt() {
        let result = screen("0123456789ABC", columns: 10)
        #expect(result.visibleText[0...1] == ["0123456789", "ABC"])
        #expect(result.isWrapped(line: 0) && !result.isWrapped(line: 1))
        // Exactly full: the cursor waits on the last column until something is printed.
        let full = screen("0123456789", columns: 10)
        #expect(full.cursorRow == 0 && full.cursorColumn == 9 && !full.isWrapped(line: 0))
        let returned = screen("0123456789\r\n", columns: 10)
        #expect(returned.cursorRow == 1 && !returned.isWrapped(line: 0))
    }

    @Test func scrollingKeepsLineNumbersAndScrollbackOnlyWhenAsked() {
        var result = TerminalScreen(columns: 10, rows: 3)
        result.retainsScrollback = true
        result.feed(Array("one\r\ntwo\r\nthree\r\nfour\r\nfive".utf8))
        #expect(result.visibleText == ["three", "four", "five"])
        #expect(result.scrolledOff == 2 && result.cursorLine == 4)
        #expect(result.text(line: 0) == "one" && result.text(line: 1) == "two" && result.text(line: 4) == "five")
        result.retainsScrollback = false
        #expect(result.text(line: 0) == "" && result.firstLine == 2)
    }

    @Test func wideCharactersTakeTwoColumnsAndCombiningMarksNone() {
        let result = screen("日本x\u{301}y", columns: 10)
        #expect(result.visibleText[0] == "日本xy")
        #expect(result.cursorColumn == 6)
        let wrapped = screen("abcdefghi日", columns: 10)
        #expect(wrapped.visibleText[0...1] == ["abcdefghi", "日"])
    }

    @Test func alternateScreenHidesAndRestoresTheMainOne() {
        var result = screen("$ vi\r\n", columns: 80)
        for mode in [1049, 1047, 47] {
            result.feed(Array("\u{1b}[?\(mode)hfull screen".utf8))
            #expect(result.isAlternateScreen)
            #expect(result.visibleText.contains { $0.hasSuffix("full screen") })
            #expect(!result.visibleText.contains("$ vi"))
            result.feed(Array("\u{1b}[?\(mode)l".utf8))
            #expect(!result.isAlternateScreen)
            #expect(result.visibleText[0] == "$ vi")
        }
    }

    @Test func modesAndStringsAreTrackedOrSkipped() {
        let result = screen(
            "\u{1b}[?2004h\u{1b}[?1h\u{1b}]0;title\u{7}\u{1b}]2;t\u{1b}\\\u{1b}(B"
                + "\u{1b}Pdcs\u{1b}\\\u{1b}[1;32mok\u{1b}[m"
        )
        #expect(result.bracketedPaste && result.applicationCursorKeys)
        #expect(result.visibleText[0] == "ok")
        let off = screen("\u{1b}[?2004h\u{1b}[?2004l")
        #expect(!off.bracketedPaste)
    }

    @Test func sequencesCutAnywhereGiveTheSameScreen() {
        let output = Array("\u{1b}[32mfixture\u{1b}[0m:~# éch日 \u{1b}]0;x\u{7}\u{1b}[3D\u{1b}[K\u{1b}[?2004hok".utf8)
        var whole = TerminalScreen(columns: 30, rows: 3)
        whole.feed(output)
        for split in 0...output.count {
            var cut = TerminalScreen(columns: 30, rows: 3)
            cut.feed(output[..<split])
            cut.feed(output[split...])
            #expect(cut.visibleText == whole.visibleText, "split at \(split)")
            #expect(cut.cursorColumn == whole.cursorColumn && cut.bracketedPaste == whole.bracketedPaste)
        }
    }

    @Test func resizeKeepsTheCursorLineAndClampsHugeSizes() {
        var result = screen("a\r\nb\r\nc\r\nd", columns: 10, rows: 4)
        result.resize(columns: 5, rows: 2)
        #expect(result.visibleText == ["c", "d"])
        #expect(result.cursorLine == 3)
        result.resize(columns: 1_000_000, rows: -5)
        #expect(result.columns == TerminalScreen.maxColumns && result.rows == 1)
        let huge = TerminalScreen(columns: Int.max, rows: Int.max)
        #expect(huge.columns == 1000 && huge.rows == 1000)
    }

    @Test func hostileOutputNeitherCrashesNorGrows() {
        var generator = SplitMix(seed: 17)
        var result = TerminalScreen(columns: 40, rows: 10)
        result.retainsScrollback = true
        for _ in 0..<200 {
            let chunk = (0..<512).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
            result.feed(chunk)
            #expect(result.cursorRow < result.rows && result.cursorColumn < result.columns)
        }
        let nasty = [
            "\u{1b}[99999999999999999999999999A", "\u{1b}[4294967296;4294967296H",
            "\u{1b}[" + String(repeating: "1;", count: 100_000) + "m",
            "\u{1b}]" + String(repeating: "x", count: 200_000), "\u{1b}P" + String(repeating: "y", count: 10_000),
            "\u{1b}[99999@", "\u{1b}[99999P", "\u{1b}[99999L", "\u{1b}[99999M", "\u{1b}[99999S", "\u{1b}[99999T",
            "\u{1b}[5;3r\u{1b}[99999B\u{1b}[99999A", "\u{1b}[0;0r",
            "\u{1b}[?1049h\u{1b}[?1049h\u{1b}[?47l\u{1b}[?1049l",
            "\u{1b}[", "\u{1b}", "\u{e2}\u{82}", "\u{1b}c", "\u{1b}[?99999999h",
        ]
        for text in nasty {
            result.feed(Array(text.utf8))
            #expect(result.cursorRow < result.rows && result.cursorColumn < result.columns)
        }
        #expect(result.scrollback.count * result.columns <= TerminalScreen.maxScrollbackCells)
        #expect(result.parser.parameters.count <= 16)
        for _ in 0..<5_000 { result.feed(Array("line\r\n".utf8)) }
        #expect(result.scrollback.count * result.columns <= TerminalScreen.maxScrollbackCells)
    }
}

