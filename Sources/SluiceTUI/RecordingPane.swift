import Dispatch
import Foundation
import SluiceModel
import SluiceStore

/// The detail screen's recording player for one SSH flow: its `<flow-id>.cast` read and made into a timeline on the
/// background queue (a long session is many megabytes), then played on the UI thread.
struct RecordingPane {
    enum State {
        case loading
        /// No recording: the reason, said in the pane.
        case missing(String)
        case failed(String)
        case ready(RecordingPlayer)
    }

    /// Where to put the player once the recording is read.
    enum Start: Sendable, Equatable {
        case beginning
        /// A captured command: its text, how many of the flow's commands before it had the same text, and its time
        /// (Unix seconds), for `RecordingTimeline.moment(ofCommand:occurrence:at:)`.
        case command(text: String, occurrence: Int, time: Double)
        case time(Double)
    }

    private(set) var flowID: FlowID?
    private(set) var state = State.loading
    private var start = Start.beginning
    /// Counts opens, so a read that comes back after another was started is dropped.
    private var generation = 0
    private let background: DispatchQueue
    private let inbox: Inbox

    init(background: DispatchQueue, inbox: Inbox) {
        self.background = background
        self.inbox = inbox
    }

    var player: RecordingPlayer? {
        if case .ready(let player) = state { return player }
        return nil
    }

    /// Reads flow `id`'s recording at `path`. The same flow opened again keeps its place unless `start` says
    /// otherwise; the file is read again (a live session's recording grows).
    mutating func open(_ id: FlowID, path: String, at start: Start?) {
        if flowID == id, let player, start == nil {
            self.start = .time(player.position)
        } else {
            self.start = start ?? .beginning
        }
        flowID = id
        state = .loading
        generation += 1
        let generation = generation
        background.async { [inbox] in
            let state = Self.read(id, path: path)
            inbox.post { app in app.recording.finished(generation, state) }
        }
    }

    private static func read(_ id: FlowID, path: String) -> State {
        guard FileManager.default.fileExists(atPath: path) else {
            return .missing("no recording for flow \(id): only SSH sessions with a terminal are recorded (\(path))")
        }
        do {
            return .ready(RecordingPlayer(RecordingTimeline(try AsciicastReader.read(path: path))))
        } catch {
            return .failed("recording \(path): \(error)")
        }
    }

    private mutating func finished(_ generation: Int, _ loaded: State) {
        guard generation == self.generation else { return }
        state = loaded
        let start = start
        change { player in
            switch start {
            case .beginning: player.seek(to: 0)
            case .time(let time): player.seek(to: time)
            case .command(let text, let occurrence, let time):
                player.seek(to: player.timeline.moment(ofCommand: text, occurrence: occurrence, at: time) ?? 0)
            }
        }
    }

    /// Changes the player, when there is one.
    mutating func change(_ body: (inout RecordingPlayer) -> Void) {
        guard case .ready(var player) = state else { return }
        state = .loading  // moved out and back, so the screen is not copied
        body(&player)
        state = .ready(player)
    }

    /// Moves a playing recording on; whether the screen needs drawing again.
    mutating func tick(now: Date) -> Bool {
        var changed = false
        change { changed = $0.tick(now: now) }
        return changed
    }

    mutating func close() {
        flowID = nil
        state = .loading
        generation += 1
    }
}
