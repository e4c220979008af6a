import Dispatch
import Foundation

/// The render loop: keys, engine events and redraws on one thread, at most ~30 redraws a second.
public enum TerminalUI {
    /// Runs until the operator quits or SIGINT/SIGTERM arrives; the terminal is restored either way.
    public static func run(_ app: App, theme: Theme) {
        let stop = StopFlag()
        let signals = [SIGINT, SIGTERM, SIGHUP].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { stop.set() }
            source.resume()
            return source
        }
        defer { signals.forEach { $0.cancel() } }
        let terminal = Terminal(theme: theme)
        defer { terminal.close() }
        app.loadHistory()
        var lastRender = Date.distantPast
        while app.running && !stop.isSet {
            app.tick()
            let now = Date()
            // Countdowns and rates move once a second even when nothing else changes.
            if app.dirty || now.timeIntervalSince(lastRender) >= 1 {
                terminal.clear()
                app.render(on: terminal, now: now)
                terminal.present()
                lastRender = now
            }
            if let key = terminal.readKey(timeoutMilliseconds: 33) {
                app.handle(key)
            }
        }
    }
}

final class StopFlag: @unchecked Sendable {
    // @unchecked: `value` is only touched under `lock`.
    private let lock = NSLock()
    private var value = false

    func set() { lock.withLock { value = true } }
    var isSet: Bool { lock.withLock { value } }
}
