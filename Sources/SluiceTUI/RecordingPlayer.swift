import Foundation
import SluiceTerminal

/// The inline player's state: where in the recording it is, whether it plays, and the screen at that moment.
///
/// A value with the clock passed in (`tick(now:)`), so tests play it with a clock of their own. Playing forward
/// feeds only the events since the last frame; a seek goes through the timeline's seek points, so no key replays
/// more than a bounded stretch of the recording.
struct RecordingPlayer: Sendable {
    let timeline: RecordingTimeline
    private(set) var position: Double = 0
    private(set) var isPlaying = false
    /// The screen at `position` and how many of the timeline's steps it shows.
    private(set) var screen: TerminalScreen
    private(set) var applied = 0
    /// The longest pause played, in seconds (`sluice play`'s default); nil plays pauses in full.
    var idleLimit: Double? = 2
    /// When playing last moved the position.
    private var lastTick: Date?

    /// How far `←` and `→` move.
    static let seekStep = 5.0

    init(_ timeline: RecordingTimeline) {
        self.timeline = timeline
        screen = timeline.initialScreen
        seek(to: 0)
    }

    var duration: Double { timeline.duration }

    /// The marker in effect (the last at or before the position).
    var currentMarker: Int? { timeline.markerIndex(at: position) }

    mutating func seek(to time: Double, now: Date = Date()) {
        position = min(max(0, time.isFinite ? time : 0), duration)
        let target = timeline.applied(at: position)
        if target != applied {
            screen = timeline.screen(applied: target, from: screen, currentApplied: applied)
            applied = target
        }
        if isPlaying { lastTick = now }
    }

    mutating func seek(by delta: Double, now: Date = Date()) {
        seek(to: position + delta, now: now)
    }

    /// `[` and `]`: the previous or next command's marker; at either end, the start or the end.
    mutating func previousMarker(now: Date = Date()) {
        seek(to: timeline.previousMarker(before: position).map { timeline.markers[$0].time } ?? 0, now: now)
    }

    mutating func nextMarker(now: Date = Date()) {
        seek(to: timeline.nextMarker(after: position).map { timeline.markers[$0].time } ?? duration, now: now)
    }

    /// Space. Playing from the end starts again from the beginning.
    mutating func togglePlaying(now: Date = Date()) {
        if isPlaying {
            isPlaying = false
            lastTick = nil
            return
        }
        if position >= duration { seek(to: 0, now: now) }
        isPlaying = true
        lastTick = now
    }

    /// Moves a playing recording on by the time since the last tick. Returns whether what is drawn changed: the
    /// screen, or the position as shown (tenths of a second), so a frame is drawn only then.
    mutating func tick(now: Date) -> Bool {
        guard isPlaying, let last = lastTick else { return false }
        let elapsed = max(0, now.timeIntervalSince(last))
        lastTick = now
        let shown = Self.tenths(position)
        let before = applied
        seek(to: timeline.advanced(position, by: elapsed, idleLimit: idleLimit), now: now)
        if position >= duration {
            isPlaying = false
            lastTick = nil
            return true
        }
        return applied != before || Self.tenths(position) != shown
    }

    private static func tenths(_ time: Double) -> Int { Int((time * 10).rounded(.down)) }

    /// `12.3 s / 95.0 s`
    var positionText: String {
        "\(Self.seconds(position)) / \(Self.seconds(duration))"
    }

    static func seconds(_ time: Double) -> String {
        String(format: "%.1f s", time)
    }
}
