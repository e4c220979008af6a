import Foundation
import Testing

@testable import SluiceTUI

@Suite struct BindingsTests {
    @Test func noKeyIsBoundTwiceOnOneScreen() {
        for view in ViewKind.allCases {
            var seen: [Key: Action] = [:]
            for binding in Bindings.all where binding.views?.contains(view) == true {
                for key in binding.keys {
                    #expect(seen[key] == nil, "\(key) is bound twice on \(view)")
                    seen[key] = binding.action
                }
            }
        }
    }

    @Test func screenBindingWinsOverGlobal() {
        #expect(Bindings.action(for: .character("q"), in: .flows) == .quit)
        #expect(Bindings.action(for: .character("q"), in: .detail) == .back)
        #expect(Bindings.action(for: .character("a"), in: .intercept) == .forward)
        #expect(Bindings.action(for: .character("a"), in: .flows) == nil)
        #expect(Bindings.action(for: .character("?"), in: .connections) == .help)
    }

    @Test func helpListsEveryBinding() {
        let help = Bindings.helpLines().joined(separator: "\n")
        for binding in Bindings.all {
            #expect(help.contains(binding.help), "help misses: \(binding.help)")
        }
        #expect(help.contains("Hex editor"))
        #expect(help.contains("~k KIND"))
        #expect(!help.contains("Not available"))
    }

    @Test func whatNeedsAnEngineIsNotOfferedWithoutOne() {
        #expect(Bindings.statusHints(in: .flows, .all) == ["? help", "f filter", "i intercept", "q quit"])
        #expect(Bindings.statusHints(in: .flows, .readOnly) == ["? help", "f filter", "q quit"])
        #expect(Bindings.statusHints(in: .detail, .readOnly) == ["? help", "f filter", "q back"])
        let needsEngine = Bindings.all.filter { Capabilities.readOnly.disabledReason($0) != nil }.map(\.action)
        for action in [Action.intercept, .forward, .forwardAll, .drop, .kill, .edit, .sendToServer, .sendToClient, .replay] {
            #expect(needsEngine.contains(action), "\(action)")
        }
        for action in [Action.filter, .mark, .save, .open, .toggleHex, .search, .help, .quit] {
            #expect(!needsEngine.contains(action), "\(action) works read-only")
        }
        let help = Bindings.helpLines(.readOnly).joined(separator: "\n")
        #expect(help.contains("Filter language (f)\n") && !help.contains("Hex editor"))
    }
}

@Suite struct ThemeTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    @Test(arguments: ["dark", "light", "mono"])
    func builtInThemesMatchTheFilesAndCoverEveryRole(_ name: String) throws {
        let file = Self.repository.appendingPathComponent("themes/\(name).yaml")
        let text = try String(contentsOf: file, encoding: .utf8)
        #expect(BuiltInThemes.yaml[name] == text.trimmingCharacters(in: .newlines), "run scripts/embed-themes")
        let theme = try Theme.named(name, searching: nil)
        #expect(Set(theme.styles.keys) == Set(Role.allCases))
    }

    @Test func monoUsesNoColours() throws {
        let theme = try Theme.named("mono", searching: nil)
        #expect(theme.styles.values.allSatisfy { $0.foreground == .default && $0.background == .default })
    }

    @Test func badThemesSayWhere() {
        #expect(throws: ThemeError.self) { try Theme.named("nope", searching: nil) }
        #expect {
            try Theme.parse(yaml: "name: x\nroles:\n  selection: { fg: purple }\n", source: "x.yaml")
        } throws: { error in
            "\(error)" == "x.yaml:3: selection: unknown colour 'purple'"
        }
        #expect {
            try Theme.parse(yaml: "name: x\nroles:\n  sparkle: {}\n", source: "x.yaml")
        } throws: { error in
            "\(error)".hasPrefix("x.yaml:3: unknown role 'sparkle'")
        }
    }

    @Test func aFileInTheThemesDirectoryOverridesTheBuiltIn() throws {
        let directory = NSTemporaryDirectory() + "sluice-themes-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try "name: dark\nroles:\n  selection: { fg: red, bg: green, attrs: [bold] }\n".write(
            toFile: directory + "/dark.yaml", atomically: true, encoding: .utf8
        )
        let theme = try Theme.named("dark", searching: directory)
        #expect(theme.style(.selection) == Style(foreground: .red, background: .green, attributes: [.bold]))
    }
}

@Suite struct CanvasTests {
    /// Whatever a view draws (a URL, a user name, an error quoting a peer) reaches the screen with its control
    /// characters written out: a peer cannot clear the operator's screen or move the cursor.
    @Test func controlCharactersAreShownNotObeyed() {
        let canvas = TextCanvas(width: 40, height: 2)
        canvas.put(0, 0, "user '\u{1B}[2J\nx'", .normal)
        #expect(canvas.lines[0] == "user '\\e[2J\\nx'")
    }
}

