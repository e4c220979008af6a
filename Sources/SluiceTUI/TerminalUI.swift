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
            source.setEventHandler {
                // SIGHUP is the terminal hanging up, or an operator's `kill -HUP` asking for a policy reload (which
                // the executable does): quit only when the terminal is gone.
                if number == SIGHUP && terminalIsPresent() { return }
                stop.set()
            }
            source.resume()
            return source
        }
        defer { signals.forEach { $0.cancel() } }
        let terminal = Terminal(theme: theme)
        defer { terminal.close() }
        app.loadHistory()
        var lastRender = Date.distantPast
        while app.running && !stop.isSet {
            frame(app, on: terminal, now: Date(), lastRender: &lastRender)
            if let key = terminal.readKey(timeoutMilliseconds: keyWait(app)) {
                app.handle(key)
            } else if inputHungUp() {
                // The terminal went away without a SIGHUP this loop saw (it came while /dev/tty could still be
                // opened): reads now return at once, and the loop would spin. Quit as for the hang-up.
                break
            }
        }
    }

    /// Whether the terminal's input has hung up: a read would return at once, every time.
    static func inputHungUp() -> Bool {
        var descriptor = pollfd(fd: STDIN_FILENO, events: Int16(POLLIN), revents: 0)
        guard poll(&descriptor, 1, 0) >= 0 else { return false }
        return descriptor.revents & Int16(POLLHUP | POLLERR | POLLNVAL) != 0
    }

    /// Whether the controlling terminal is still there: after a hang-up the process has none, and /dev/tty cannot
    /// be opened.
    static func terminalIsPresent() -> Bool {
        let fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        close(fd)
        return true
    }

    /// How long the loop waits for a key (milliseconds): a frame at 30 per second, shorter while the screen waits
    /// for a detail read.
    static func keyWait(_ app: App) -> Int {
        app.detailReads > 0 ? 2 : 33
    }

    /// One turn of the loop before it waits for a key: take what arrived (engine events, work finished in the
    /// background) and draw when it changed the screen. Countdowns and rates move once a second even when nothing
    /// else changes.
    static func frame(_ app: App, on canvas: Canvas, now: Date, lastRender: inout Date) {
        app.tick(now: now)
        if app.dirty || now.timeIntervalSince(lastRender) >= 1 {
            canvas.clear()
            app.render(on: canvas, now: now)
            canvas.present()
            lastRender = now
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
