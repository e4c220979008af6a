import SluiceStore
import SluiceTerminal

/// A recorded terminal session made ready to show at any moment: its screen-changing events in time order, its
/// markers (one per captured command), and copies of the screen every so often to seek from.
///
/// The screen at time t is the recording's output up to t fed to a `TerminalScreen` of the recorded size. Replaying
/// from the start on every seek would cost the whole file (a long session is many megabytes), so building the
/// timeline plays it once and keeps a seek point (a copy of the screen, cheap: its cells are copy-on-write) every
/// `seekPointSteps` events or `seekPointBytes` bytes of output, whichever comes first; a seek then replays at most
/// that much. The points' memory is bounded too: a point is taken no more often than every `cells × 4` bytes of
/// output (the size of the copy), so they never hold more than the output itself, give or take a screen.
///
/// Pure and `Sendable`: built on the background queue, read on the UI thread.
struct RecordingTimeline: Sendable {
    /// An event that changes the screen.
    enum Change: Sendable, Equatable {
        case output(String)
        case resize(columns: Int, rows: Int)
    }

    struct Step: Sendable, Equatable {
        var time: Double
        var change: Change
    }

    /// A place to jump to: Sluice puts one at each captured command, labelled with its text.
    struct Marker: Sendable, Equatable {
        var time: Double
        var label: String
    }

    /// The screen after the first `applied` steps.
    struct SeekPoint: Sendable {
        var applied: Int
        var screen: TerminalScreen
    }

    static let seekPointSteps = 1000
    static let seekPointBytes = 64 << 10

    let columns: Int
    let rows: Int
    /// When the recording started (Unix seconds, whole), to place a command that has no marker.
    let startTimestamp: Int64?
    let steps: [Step]
    let markers: [Marker]
    /// The time of the last event.
    let duration: Double
    /// The recording was cut mid-line (a crash while writing); what is whole plays.
    let torn: Bool
    private(set) var seekPoints: [SeekPoint] = []

    init(_ recording: AsciicastReader.Recording) {
        columns = recording.header.width
        rows = recording.header.height
        startTimestamp = recording.header.timestamp
        torn = recording.tornLastLine
        var steps: [Step] = []
        var markers: [Marker] = []
        for event in recording.events {
            switch event.code {
            case .output:
                steps.append(Step(time: event.time, change: .output(event.data)))
            case .resize:
                if let size = Self.size(event.data) {
                    steps.append(Step(time: event.time, change: .resize(columns: size.columns, rows: size.rows)))
                }
            case .marker:
                markers.append(Marker(time: event.time, label: event.data))
            default:
                break
            }
        }
        self.steps = steps
        self.markers = markers
        duration = recording.events.last?.time ?? 0
        seekPoints = buildSeekPoints()
    }

    /// An "r" event's `COLSxROWS`.
    static func size(_ text: String) -> (columns: Int, rows: Int)? {
        let parts = text.split(separator: "x")
        guard parts.count == 2, let columns = Int(parts[0]), let rows = Int(parts[1]), columns > 0, rows > 0 else {
            return nil
        }
        return (columns, rows)
    }

    /// A blank screen of the recorded size.
    var initialScreen: TerminalScreen { TerminalScreen(columns: columns, rows: rows) }

    private func buildSeekPoints() -> [SeekPoint] {
        var screen = initialScreen
        var points = [SeekPoint(applied: 0, screen: screen)]
        var bytes = 0
        var count = 0
        for index in steps.indices {
            bytes += Self.apply(steps[index].change, to: &screen)
            count += 1
            let copyCost = screen.columns * screen.rows * 4
            if count >= Self.seekPointSteps || bytes >= max(Self.seekPointBytes, copyCost) {
                points.append(SeekPoint(applied: index + 1, screen: screen))
                bytes = 0
                count = 0
            }
        }
        return points
    }

    /// Applies one change; returns the bytes it fed.
    @discardableResult
    static func apply(_ change: Change, to screen: inout TerminalScreen) -> Int {
        switch change {
        case .output(let text):
            screen.feed(text.utf8)
            return text.utf8.count
        case .resize(let columns, let rows):
            screen.resize(columns: columns, rows: rows)
            return 0
        }
    }

    /// How many steps happened by `time` (those at exactly `time` included).
    func applied(at time: Double) -> Int {
        var low = 0
        var high = steps.count
        while low < high {
            let middle = (low + high) / 2
            if steps[middle].time <= time { low = middle + 1 } else { high = middle }
        }
        return low
    }

    /// The screen after `applied` steps, replayed from the nearest seek point before them (or from `current`, the
    /// screen after `currentApplied` steps, when that is nearer and not past them).
    func screen(applied target: Int, from current: TerminalScreen? = nil, currentApplied: Int = 0) -> TerminalScreen {
        let target = min(max(0, target), steps.count)
        var point = seekPoints.last { $0.applied <= target } ?? SeekPoint(applied: 0, screen: initialScreen)
        if let current, currentApplied <= target, currentApplied >= point.applied {
            point = SeekPoint(applied: currentApplied, screen: current)
        }
        var screen = point.screen
        for index in point.applied..<target { Self.apply(steps[index].change, to: &screen) }
        return screen
    }

    /// The screen at `time`, replayed from the start: what seeking must equal (tests).
    func linearScreen(at time: Double) -> TerminalScreen {
        var screen = initialScreen
        for step in steps where step.time <= time { Self.apply(step.change, to: &screen) }
        return screen
    }

    // MARK: Markers

    /// The marker in effect at `time`: the last one at or before it.
    func markerIndex(at time: Double) -> Int? {
        markers.lastIndex { $0.time <= time }
    }

    /// The first marker after `time`.
    func nextMarker(after time: Double) -> Int? {
        markers.firstIndex { $0.time > time + Self.tolerance }
    }

    /// The last marker before `time`.
    func previousMarker(before time: Double) -> Int? {
        markers.lastIndex { $0.time < time - Self.tolerance }
    }

    /// Two times this close are the same moment (a marker and the position seeked to it).
    static let tolerance = 0.001

    /// Where a captured command happened: its marker, found by its text and how many commands of the same text
    /// came before it in the session (`occurrence`); else the marker of that text nearest its time; else its time
    /// since the recording began (`unixTime` against the header's whole-second start).
    func moment(ofCommand text: String, occurrence: Int, at unixTime: Double?) -> Double? {
        let same = markers.filter { $0.label == text }
        let offset = unixTime.flatMap { time in startTimestamp.map { time - Double($0) } }
        if occurrence >= 0, occurrence < same.count { return same[occurrence].time }
        if let offset, let nearest = same.min(by: { abs($0.time - offset) < abs($1.time - offset) }) {
            return nearest.time
        }
        if let offset { return min(max(0, offset), duration) }
        return same.last?.time
    }

    // MARK: Playing

    /// The position `elapsed` seconds of playing after `time`, with every pause between two events cut to
    /// `idleLimit` (as `sluice play --idle-limit` does): a long silence passes in `idleLimit` seconds.
    func advanced(_ time: Double, by elapsed: Double, idleLimit: Double?) -> Double {
        var position = time
        var left = max(0, elapsed)
        var next = applied(at: position)
        while left > 0 {
            guard next < steps.count else { return min(duration, position + left) }
            let previous = next > 0 ? steps[next - 1].time : 0
            let upcoming = steps[next].time
            let needed: Double
            if let idleLimit, upcoming - previous > idleLimit {
                // Past `previous + idleLimit` the silence is skipped.
                needed = max(0, previous + idleLimit - position)
            } else {
                needed = upcoming - position
            }
            if left < needed { return position + left }
            left -= needed
            position = upcoming
            next = applied(at: position)
        }
        return position
    }
}
