import Foundation
import SluiceCore
import SluiceModel

/// The status line's prompt: what each kind of submitted text does.
extension App {
    func handlePrompt(_ key: Key) {
        guard var current = prompt else { return }
        switch current.handle(key) {
        case .ignored:
            return
        case .cancelled:
            prompt = nil
        case .submitted:
            submit(current)
        case .edited:
            prompt = current
            if current.kind == .search {
                search = current.text
                findNext(from: flows.window.selected)
            }
        }
    }

    private func submit(_ current: Prompt) {
        switch current.kind {
        case .filter, .intercept:
            var filter: Filter?
            if !current.text.trimmingCharacters(in: .whitespaces).isEmpty {
                do {
                    filter = try Filter(current.text)
                } catch {
                    prompt?.error = error.description
                    return
                }
            }
            prompt = nil
            if current.kind == .filter {
                viewFilter = filter
                forgetIndexLookups()
                if let filter { lookUpInIndex(filter.plainWords) }
                refilterFlows()
                refilterCommandLists()
                setStatus(filter.map { "filter: \($0.text)" + filterCount } ?? "filter cleared")
            } else if let queue = engine?.intercept {
                queue.filter = filter
                setStatus(filter.map { "intercepting: \($0.text)" } ?? "intercept off")
            } else {
                noEngine()
            }
        case .search:
            prompt = nil
            search = current.text
            // Enter looks the whole text up in the index too; the next match may be a flow whose first bytes do not
            // show it.
            if !search.isEmpty, (try? Filter(search))?.plainWords == [search] {
                indexHits[search] = nil
                lookUpInIndex([search])
            }
        case .save:
            prompt = nil
            save(to: current.text)
        case .block:
            prompt = nil
            decide(.block(message: current.text))
        case .command:
            runCommandLine(current.text)
        case .confirmRerun(let statement):
            prompt = nil
            guard ["y", "yes"].contains(current.text.trimmingCharacters(in: .whitespaces).lowercased()) else {
                return setStatus("not re-run")
            }
            rerun(statement)
        case .password(let statement):
            prompt = nil
            rerun(statement, password: current.text)
        case .send(let direction):
            prompt = nil
            guard let engine else { return noEngine() }
            guard let id = detail?.flowID else { return }
            let sent = engine.send(Data(current.text.utf8), kind: .text, direction: direction, into: id)
            setStatus(
                sent ? "sent \(current.text.utf8.count) bytes to the \(direction == .up ? "server" : "client") of flow \(id)"
                    : "flow \(id) is not an open WebSocket", isError: !sent
            )
        }
    }

    /// How many rows the filter lists, of the screen it was typed on.
    var filterCount: String {
        switch view {
        case .commands: return "  (\(log.commands.visible.count) of \(log.commands.rows.count) commands)"
        case .alerts: return "  (\(log.alerts.visible.count) of \(log.alerts.rows.count) alerts)"
        default:
            let count = flows.count
            return "  (\(count.listed.map { (count.isBound ? "at most " : "") + "\($0)" } ?? "…") of \(count.total.map(String.init) ?? "…") flows)"
                + (filtering ? " (filtering…)" : "")
        }
    }

    /// Saves the marked flows, or else the listed ones, to a store file (see `SaveDestination`). Which they are is
    /// read from the store first, a page at a time.
    private func save(to typed: String) {
        guard store != nil else { return setStatus("no store to save from", isError: true) }
        var marked = listFilter
        marked.filter = try? Filter("~marked")
        marked.clearedThrough = nil
        let listed = listFilter
        setStatus("finding the flows to save…")
        flows.listedIDs(marked) { app, markedIDs in
            guard markedIDs.isEmpty else { return app.save(markedIDs, to: typed) }
            app.flows.listedIDs(listed) { app, listedIDs in app.save(listedIDs, to: typed) }
        }
    }

    private func save(_ ids: [FlowID], to typed: String) {
        guard let store else { return }
        guard !ids.isEmpty else { return setStatus("nothing to save", isError: true) }
        let destination = saveDestination
        let path = destination.resolve(typed)
        setStatus("saving \(ids.count) flows to \(path)…")
        background.async { [inbox] in
            do {
                try destination.prepare(for: path)
                try store.export(ids, to: path)
                inbox.post { app in app.setStatus("saved \(ids.count) flows to \(path); open with `sluice view \(path)`") }
            } catch {
                inbox.post { app in app.setStatus("\(error)", isError: true) }
            }
        }
    }
}

/// The command line (`:`): listeners added and stopped while Sluice runs.
extension App {
    /// `listen SPEC` binds a listener now; `stop N` stops listener N (its open connections go on). A mistake keeps
    /// the prompt open, saying what was wrong.
    func runCommandLine(_ line: String) {
        guard let engine else {
            prompt = nil
            return noEngine()
        }
        let words = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        switch (words.first, words.count) {
        case ("listen", 2):
            let spec: ListenSpec
            do {
                spec = try ListenSpec(parsing: words[1], schemes: engine.listenSchemes)
            } catch {
                prompt?.error = error.description
                return
            }
            do {
                let listener = try engine.listen(spec)
                prompt = nil
                let address = listener.address.map { " on \(Endpoint($0))" } ?? ""
                setStatus("listener #\(listener.id): \(listener.spec)\(address)")
            } catch {
                prompt?.error = error.description
            }
        case ("stop", 2):
            guard let id = Int(words[1].trimmingCharacters(in: CharacterSet(charactersIn: "#"))) else {
                prompt?.error = "stop takes a listener's number (Conns lists them)"
                return
            }
            guard let stopped = engine.stopListening(id) else {
                prompt?.error = "no listener #\(id)"
                return
            }
            prompt = nil
            setStatus("stopped listener #\(id) (\(stopped.spec)); its open connections go on")
        case (nil, _):
            prompt = nil
        default:
            prompt?.error = "commands: listen SCHEME://HOST:PORT[=>TARGET], stop N"
        }
    }
}
