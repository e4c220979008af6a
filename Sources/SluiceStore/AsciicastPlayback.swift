/// What a player shows and when: a recording's output events with the pauses between them, sped up and with long
/// pauses capped. Pure, so `sluice play` (and the TUI's inline player later) only sleeps and writes.
public struct AsciicastPlayback: Sendable {
    /// Output to show after waiting `delay` seconds (already divided by the speed).
    public struct Frame: Sendable, Equatable {
        public var delay: Double
        public var text: String

        public init(delay: Double, text: String) {
            self.delay = delay
            self.text = text
        }
    }

    public let frames: [Frame]

    /// - Parameters:
    ///   - speed: how many times faster than recorded (above 0).
    ///   - idleLimit: the longest pause shown, in recorded seconds (asciinema's `-i`); nil for none. Capped before
    ///     the speed applies, as asciinema does.
    public init(_ recording: AsciicastReader.Recording, speed: Double = 1, idleLimit: Double? = 2) {
        let speed = speed > 0 && speed.isFinite ? speed : 1
        var frames: [Frame] = []
        var previous = 0.0
        for event in recording.events where event.code == .output {
            var gap = max(0, event.time - previous)
            if let idleLimit, idleLimit >= 0 { gap = min(gap, idleLimit) }
            frames.append(Frame(delay: gap / speed, text: event.data))
            previous = event.time
        }
        self.frames = frames
    }

    /// How long the whole playback takes, in seconds.
    public var duration: Double { frames.reduce(0) { $0 + $1.delay } }
}
