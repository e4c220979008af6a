import Dispatch
import Foundation

/// SIGINT and SIGTERM, caught from the moment this is made until `cancel()`: `wait()` returns once either has come,
/// also when it came before the wait began.
final class StopSignals {
    private let stop = DispatchSemaphore(value: 0)
    private let sources: [any DispatchSourceSignal]

    init() {
        let stop = stop
        sources = [SIGINT, SIGTERM].map { number in
            // Ignored, so that the default action (the end of the process, without the store's last batch) does not
            // run; the dispatch source still sees the signal.
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { stop.signal() }
            source.resume()
            return source
        }
    }

    func wait() {
        stop.wait()
    }

    func cancel() {
        sources.forEach { $0.cancel() }
    }
}
