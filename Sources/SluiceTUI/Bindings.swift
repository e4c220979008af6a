/// The screens, each a keystroke away.
public enum ViewKind: String, CaseIterable, Sendable {
    case flows = "Flows"
    case detail = "Detail"
    /// The detail of an SSH flow with its recording's player in focus.
    case player = "Player"
    case connections = "Connections"
    case intercept = "Intercept"
    case commands = "Commands"
    case alerts = "Alerts"
    case help = "Help"
}

/// Everything a key can do. Views never interpret keys themselves; the binding table maps keys to these.
public enum Action: Hashable, Sendable {
    case quit, help, back
    case show(ViewKind)
    case up, down, pageUp, pageDown, top, bottom
    case open, follow
    case filter, intercept, search, searchNext
    case mark, clearView, save
    case forward, forwardAll, drop, kill, edit
    /// Block a held message or command and say why (a blocked command's user reads it; an HTTP client gets it in a 403).
    case block
    case toggleHex, replay, sendToServer, sendToClient
    case reloadPolicy
    /// `:`: the command line (`listen SPEC`, `stop N`).
    case commandLine
    case togglePlayer, playPause, seekBack, seekForward, previousCommand, nextCommand, recordingStart, recordingEnd
}

/// What a binding needs besides its screen. Lazygit's "disabled reason" as data: where the UI lacks it, the help
/// and the status line leave the binding out, and its key says why instead of acting.
public enum Requirement: Sendable {
    /// A running engine: holds, verdicts, connections, sending into a WebSocket.
    case engine
    /// A running engine that can replay HTTP requests into its store.
    case replayer
}

/// What the running UI can do. `sluice view` opens a store read-only, with neither an engine nor a replayer.
public struct Capabilities: Sendable, Equatable {
    public var engine: Bool
    public var replayer: Bool

    public static let all = Capabilities(engine: true, replayer: true)
    public static let readOnly = Capabilities(engine: false, replayer: false)

    /// Why `binding` does nothing here, or nil when it works.
    public func disabledReason(_ binding: Binding) -> String? {
        switch binding.requires {
        case nil: return nil
        case .engine: return engine ? nil : Self.readOnlyReason
        case .replayer:
            if replayer { return nil }
            return engine ? "replay needs the store, which could not be opened" : Self.readOnlyReason
        }
    }

    static let readOnlyReason = "read-only: no engine in `sluice view`"
}

/// One row of the key table: which keys, what they do, where, and the line the help screen shows.
public struct Binding: Sendable {
    public var keys: [Key]
    public var action: Action
    public var help: String
    /// nil: everywhere (unless a view binds the same key).
    public var views: Set<ViewKind>?
    public var requires: Requirement?
    /// The word the status line shows after the key, for the few bindings it reminds of (`Bindings.reminders`).
    public var hint: String?

    public init(
        _ keys: [Key], _ action: Action, _ help: String, in views: Set<ViewKind>? = nil, requires: Requirement? = nil,
        hint: String? = nil
    ) {
        self.keys = keys
        self.action = action
        self.help = help
        self.views = views
        self.requires = requires
        self.hint = hint
    }
}

/// The key table. The help screen and the README's key table are generated from it.
public enum Bindings {
    static let heldViews: Set<ViewKind> = [.intercept, .detail]
    /// Where a held command can be decided: beside held messages, and on its row in the Commands view.
    static let commandViews: Set<ViewKind> = heldViews.union([.commands])
    static let listViews: Set<ViewKind> = [.flows, .connections, .intercept, .detail, .help, .commands, .alerts]

    public static let all: [Binding] = [
        Binding([.character("?")], .help, "help: this screen", hint: "help"),
        Binding([.character("q")], .quit, "quit (from the flow list; elsewhere: back)", in: [.flows], hint: "quit"),
        Binding(
            [.character("q"), .escape], .back, "back to the previous screen", in: [.detail, .player, .connections, .intercept, .commands, .alerts, .help],
            hint: "back"
        ),
        Binding([.control("c")], .quit, "quit"),
        Binding([.character("1")], .show(.flows), "flows: the live list"),
        Binding([.character("2")], .show(.connections), "connections: open connections with bytes/s", requires: .engine),
        Binding([.character("3")], .show(.intercept), "intercept queue: held messages, oldest first", requires: .engine),
        Binding([.character("4")], .show(.commands), "commands: SSH and SQL commands with their risk and decision"),
        Binding([.character("5")], .show(.alerts), "alerts: policy alerts"),
        Binding([.up, .character("k")], .up, "move up", in: listViews),
        Binding([.down, .character("j")], .down, "move down", in: listViews),
        Binding([.pageUp], .pageUp, "page up", in: listViews),
        Binding([.pageDown, .character(" ")], .pageDown, "page down", in: listViews),
        Binding([.home, .character("g")], .top, "first row", in: listViews),
        Binding([.end, .character("G")], .bottom, "last row", in: listViews),
        Binding(
            [.enter], .open, "open the selected flow (or the flow of the held message, command or alert)",
            in: [.flows, .intercept, .connections, .commands, .alerts]
        ),
        Binding([.character("F")], .follow, "follow: keep the newest flow selected", in: [.flows]),
        Binding([.character("f")], .filter, "view filter (filter language, empty clears)", hint: "filter"),
        Binding([.character("i")], .intercept, "intercept filter: hold matching messages (empty clears)", requires: .engine, hint: "intercept"),
        Binding([.character("/")], .search, "search the list (incremental)", in: [.flows]),
        Binding([.character("n")], .searchNext, "next search match", in: [.flows]),
        Binding([.character("m")], .mark, "mark / unmark the flow", in: [.flows, .detail]),
        Binding([.character("z")], .clearView, "clear the view (hide the flows listed now)", in: [.flows]),
        Binding([.character("w")], .save, "save marked (or filtered) flows to a file for `sluice view`", in: [.flows]),
        Binding([.character("R")], .reloadPolicy, "reload the risk policy (as SIGHUP does)", in: [.commands, .alerts], requires: .engine),
        Binding([.character(":")], .commandLine, ":listen SPEC adds a listener, :stop N stops listener N (see Conns)", requires: .engine),
        Binding([.character("a")], .forward, "forward the held message (a held command: run it)", in: commandViews, requires: .engine),
        Binding([.character("A")], .forwardAll, "forward every held message", in: heldViews.union([.flows]), requires: .engine),
        Binding([.character("d")], .drop, "drop the held message (a held command: block it)", in: commandViews, requires: .engine),
        Binding([.character("D")], .block, "block the held message or command with a message (a 403, or the notice a user reads)", in: commandViews, requires: .engine),
        Binding([.character("x")], .kill, "kill the connection", in: heldViews.union([.connections]), requires: .engine),
        Binding([.character("e")], .edit, "edit the held message in the hex editor (not a command)", in: heldViews, requires: .engine),
        Binding([.character("h")], .toggleHex, "hexdump / text for messages", in: [.detail]),
        Binding([.character("s")], .sendToServer, "WebSocket: send a text message to the server", in: [.detail], requires: .engine),
        Binding([.character("S")], .sendToClient, "WebSocket: send a text message to the client", in: [.detail], requires: .engine),
        Binding([.character("p")], .togglePlayer, "SSH session: open / close the recording player", in: [.detail, .player]),
        Binding([.character(" ")], .playPause, "play / pause the recording", in: [.player]),
        Binding([.left], .seekBack, "back 5 s", in: [.player]),
        Binding([.right], .seekForward, "forward 5 s", in: [.player]),
        Binding([.character("[")], .previousCommand, "previous command (its marker)", in: [.player]),
        Binding([.character("]")], .nextCommand, "next command (its marker)", in: [.player]),
        Binding([.home, .character("g")], .recordingStart, "start of the recording", in: [.player]),
        Binding([.end, .character("G")], .recordingEnd, "end of the recording", in: [.player]),
        Binding(
            [.character("r")], .replay, "replay the HTTP request (a new flow linked to this one)", in: [.flows, .detail],
            requires: .replayer
        ),
        Binding(
            [.character("r")], .replay, "re-run the SQL statement against its target (a new flow; asks above low risk)",
            in: [.commands], requires: .replayer
        ),
    ]

    /// The binding of `key` on `view`: a view's own binding wins over a global one.
    public static func binding(for key: Key, in view: ViewKind) -> Binding? {
        let candidates = all.filter { $0.keys.contains(key) }
        if let specific = candidates.first(where: { $0.views?.contains(view) == true }) { return specific }
        return candidates.first(where: { $0.views == nil })
    }

    /// The action for `key` on `view`.
    public static func action(for key: Key, in view: ViewKind) -> Action? {
        binding(for: key, in: view)?.action
    }

    /// The keys the status line reminds of, in this order; each with what it does on the screen shown, where it works.
    static let reminders: [Key] = [.character("?"), .character("f"), .character("i"), .character("q")]

    /// The status line's reminders on `view`: `? help`, `f filter`, `i intercept`, `q quit` (or `q back`).
    public static func statusHints(in view: ViewKind, _ capabilities: Capabilities) -> [String] {
        reminders.compactMap { key in
            guard let binding = binding(for: key, in: view), let hint = binding.hint,
                capabilities.disabledReason(binding) == nil
            else { return nil }
            return "\(key) \(hint)"
        }
    }

    /// Hex editor keys: a mode of its own where most keys type.
    public static let hexEditor: [(keys: String, help: String)] = [
        ("0-9 a-f / text", "type in the hex / ASCII column"),
        ("← → ↑ ↓ Home End", "move"),
        ("Tab", "switch between the hex and ASCII columns"),
        ("Ins", "insert or overwrite"),
        ("Del / Bksp", "delete the byte under / before the cursor"),
        ("Ctrl-O", "insert a line break (CR LF), e.g. a new header line"),
        ("Ctrl-Z", "undo"),
        ("Enter", "forward the edited bytes"),
        ("Esc", "leave the editor; the message stays held"),
    ]

    /// The help screen's lines, generated from the tables: what works here, then what does not and why.
    public static func helpLines(_ capabilities: Capabilities = .all) -> [String] {
        func line(_ binding: Binding) -> String {
            let keys = binding.keys.map(\.description).joined(separator: " ")
            let scope = binding.views.map { " [" + $0.map(\.rawValue).sorted().joined(separator: ", ") + "]" } ?? ""
            return "  " + keys.fitted(to: 12) + " " + binding.help + scope
        }
        var lines = ["Keys (any screen unless a screen is named)", ""]
        var disabled: [(reason: String, lines: [String])] = []
        for binding in all {
            guard let reason = capabilities.disabledReason(binding) else {
                lines.append(line(binding))
                continue
            }
            if let index = disabled.firstIndex(where: { $0.reason == reason }) {
                disabled[index].lines.append(line(binding))
            } else {
                disabled.append((reason, [line(binding)]))
            }
        }
        let editing = all.first { $0.action == .edit }.map { capabilities.disabledReason($0) == nil } ?? true
        if editing {
            lines += ["", "Hex editor", ""]
            for entry in hexEditor {
                lines.append("  " + entry.keys.fitted(to: 18) + " " + entry.help)
            }
        }
        let intercepting = all.first { $0.action == .intercept }.map { capabilities.disabledReason($0) == nil } ?? true
        lines += [
            "", intercepting ? "Filter language (f, i)" : "Filter language (f)", "",
            "  ~k KIND  tcp http ws ssh pg mysql     ~src / ~dst ADDR  host, :port, host:port",
            "  ~b ~bq ~bs RE  payload / request / response    ~m METHOD  ~u RE  ~c CODE  ~h RE  ~t RE",
            "  ~q ~s ~e  no response / response / error       ~marked ~held",
            "  ~risk LEVEL  a command at least that risky (low medium high critical)   ~cmd RE  a command's text",
            "               (flows: one of the flow's commands; Commands, Alerts: that command)",
            "  !  &  |  ( )  'quoted'   a bare word matches the URL or the payload",
        ]
        for group in disabled {
            lines += ["", "Not available (\(group.reason))", ""] + group.lines
        }
        return lines
    }
}
