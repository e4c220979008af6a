import Foundation
import NIOCore
import NIOSSH
import SluiceCore
import SluiceModel
import SluiceStore

/// Watches one relayed session channel and decides what crosses: it records the channel's bytes into the
/// connection's flow, records a terminal session as asciicast, captures commands (an `exec` request; each line
/// submitted at an interactive shell), has the policy judge them, and withholds them until they are allowed. The
/// relay handlers only move bytes and requests; everything Sluice makes of a session happens here.
///
/// Hold points: an `exec` request is held before it is forwarded; a shell line at its Enter key, after the echo of
/// the keys before it has settled (`ShellLineTracker`), while further keys wait. A blocked exec gets a notice on
/// stderr and exit status 126; a blocked line is erased at the server and a notice printed on the user's terminal.
final class SSHChannelInspector {
    /// Where a session's recording goes and what it holds.
    struct RecordingSettings {
        var directory: DataDirectory
        var recordInput: Bool
    }

    /// How long the server's output must be quiet after the keys before an Enter were sent before the line is read:
    /// the echo has arrived by then. Bounded by `echoLimit`, for a server that never stops printing.
    static let echoQuiet: TimeAmount = .milliseconds(20)
    static let echoLimit: TimeAmount = .milliseconds(300)

    private let recorder: FlowRecorder
    private let commands: CommandLog
    private let eventLoop: EventLoop
    private let recording: RecordingSettings
    /// 1 for the connection's first terminal session (`<flow>.cast`), then 2, 3… (`<flow>-2.cast`).
    private let sessionNumber: () -> Int
    private weak var client: SSHChannelRelay?

    private var pty: SSHChannelRequestEvent.PseudoTerminalRequest?
    private var tracker: ShellLineTracker?
    private var cast: AsciicastRecording?
    /// The flush of the recording's buffered lines, armed only while lines wait: an idle session has no timer.
    private var castFlush: Scheduled<Void>?
    /// The exec command whose exit status ends it.
    private var execIndex: Int64?
    private var lastOutput = NIODeadline.now()

    /// A submitted line waiting for its echo, then for its verdict; keys typed meanwhile wait in `heldKeys`.
    private struct PendingLine {
        var enter: [UInt8]
        var rest: [UInt8]
        var sentAt: NIODeadline
        var judged = false
    }
    private var pending: PendingLine?
    private var heldKeys: [UInt8] = []
    /// A shell without a terminal (`ssh -T host`, `ssh host < script`): its input is lines, judged one by one as
    /// each is complete; `partialLine` holds the start of the next.
    private var linesWithoutTerminal = false
    private var clientEOF = false
    private var eofForwarded = false
    private var partialLine: [UInt8] = []
    /// Longest line held back for judging; a longer one is judged by its start and sent on.
    static let maxLineBytes = 64 << 10

    init(
        recorder: FlowRecorder, commands: CommandLog, eventLoop: EventLoop, recording: RecordingSettings,
        sessionNumber: @escaping () -> Int
    ) {
        self.recorder = recorder
        self.commands = commands
        self.eventLoop = eventLoop
        self.recording = recording
        self.sessionNumber = sessionNumber
    }

    func attach(client: SSHChannelRelay) {
        self.client = client
    }

    private var server: SSHChannelRelay? { client?.peer }

    // MARK: Requests

    func ptyRequested(_ request: SSHChannelRequestEvent.PseudoTerminalRequest) {
        pty = request
    }

    func windowChanged(_ request: SSHChannelRequestEvent.WindowChangeRequest) {
        tracker?.resize(columns: request.terminalCharacterWidth, rows: request.terminalRowHeight)
        record { try $0.resize(columns: request.terminalCharacterWidth, rows: request.terminalRowHeight) }
    }

    func shellRequested() {
        guard let pty else {
            linesWithoutTerminal = true
            return
        }
        tracker = ShellLineTracker(columns: pty.terminalCharacterWidth, rows: pty.terminalRowHeight)
        startRecording(title: nil)
    }

    func subsystemRequested(_ name: String) {}

    /// An exec carries its command: judged before the target sees it.
    func exec(_ request: SSHChannelRequestEvent.ExecRequest) {
        if pty != nil { startRecording(title: request.command) }
        let (command, judgement) = commands.capture(request.command, kind: .exec)
        switch judgement.action {
        case .allow, .alert:
            execIndex = command.index
            client?.forwardRequest(request, wantReply: request.wantReply)
        case .block:
            refuseExec(request, reason: judgement.reason)
        case .hold:
            let bound = NIOLoopBound(self, eventLoop: eventLoop)
            commands.gate.hold(command: command, on: eventLoop) { decision, decider, message in
                let inspector = bound.value
                if decision == .allowed {
                    inspector.execIndex = command.index
                    inspector.client?.forwardRequest(request, wantReply: request.wantReply)
                } else {
                    inspector.refuseExec(request, reason: Self.refusal(judgement.reason, decider, message))
                }
            }
        }
    }

    /// A blocked exec: the request "succeeds" so the client reads the notice on stderr and the status 126 (a
    /// command found but not run, as a shell reports it), then the channel ends.
    private func refuseExec(_ request: SSHChannelRequestEvent.ExecRequest, reason: String) {
        guard let client else { return }
        if request.wantReply { client.reply(success: true) }
        let notice = "sluice: blocked: \(Self.oneLine(reason))\r\n"
        client.finishLocally(stderr: ByteBuffer(string: notice), exitStatus: 126)
        record { try $0.output(Array(notice.utf8)) }
    }

    // MARK: Client to target

    func clientData(_ buffer: ByteBuffer, type: SSHChannelData.DataType) {
        _ = recorder.chunk(buffer, direction: .up)
        if recording.recordInput { record { try $0.input(buffer.readableBytesView) } }
        if linesWithoutTerminal, type == .channel {
            if pending != nil {
                heldKeys += buffer.readableBytesView
            } else {
                feedLines(Array(buffer.readableBytesView))
            }
            return
        }
        guard tracker != nil, type == .channel else {
            server?.send(buffer, type: type)
            return
        }
        if pending != nil {
            heldKeys += buffer.readableBytesView
            return
        }
        feedKeys(Array(buffer.readableBytesView))
    }

    private func feedKeys(_ keys: [UInt8]) {
        guard var tracker else { return }
        let step = tracker.clientInput(keys)
        self.tracker = tracker
        switch step {
        case .forward(let all):
            sendToServer(all)
        case .submit(let before, let enter, let rest):
            sendToServer(before)
            pending = PendingLine(enter: enter, rest: rest, sentAt: .now())
            client?.isPaused = true
            scheduleEchoCheck()
        }
    }

    private func scheduleEchoCheck() {
        let bound = NIOLoopBound(self, eventLoop: eventLoop)
        eventLoop.scheduleTask(in: .milliseconds(5)) { bound.value.echoCheck() }
    }

    private func echoCheck() {
        guard let line = pending, !line.judged else { return }
        let now = NIODeadline.now()
        let quiet = now - lastOutput >= Self.echoQuiet && now - line.sentAt >= Self.echoQuiet
        guard quiet || now - line.sentAt >= Self.echoLimit else {
            scheduleEchoCheck()
            return
        }
        pending?.judged = true
        guard let text = tracker?.submittedLine(), !text.allSatisfy(\.isWhitespace) else {
            release(allowed: true)
            return
        }
        let (command, judgement) = commands.capture(text, kind: .shell)
        record { try $0.marker(text) }
        switch judgement.action {
        case .allow, .alert:
            release(allowed: true)
        case .block:
            release(allowed: false, reason: judgement.reason)
        case .hold:
            let bound = NIOLoopBound(self, eventLoop: eventLoop)
            commands.gate.hold(command: command, on: eventLoop) { decision, decider, message in
                bound.value.release(allowed: decision == .allowed, reason: Self.refusal(judgement.reason, decider, message))
            }
        }
    }

    /// The verdict on the pending line: its Enter goes on, or the line is erased; then the keys that waited.
    private func release(allowed: Bool, reason: String = "") {
        guard let line = pending, let tracker else { return }
        pending = nil
        if allowed {
            sendToServer(line.enter)
        } else {
            let block = tracker.blockSequence(reason: Self.oneLine(reason))
            sendToServer(block.toServer)
            client?.send(ByteBuffer(bytes: block.toClient))
            client?.flushWrites()
            record { try $0.output(block.toClient) }
        }
        client?.isPaused = false
        let waiting = line.rest + heldKeys
        heldKeys = []
        if !waiting.isEmpty { feedKeys(waiting) }
        forwardEOFIfDone()
    }

    /// Without a terminal: each complete line is judged before it is sent; a blocked one is not sent at all and the
    /// client reads why on stderr.
    private func feedLines(_ bytes: [UInt8]) {
        var bytes = partialLine + bytes
        partialLine = []
        while !bytes.isEmpty {
            guard let newline = bytes.firstIndex(of: UInt8(ascii: "\n")) ?? (bytes.count > Self.maxLineBytes ? Self.maxLineBytes - 1 : nil) else {
                partialLine = bytes
                return
            }
            let line = Array(bytes[...newline])
            bytes.removeFirst(newline + 1)
            let text = String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            guard !text.isEmpty else {
                sendToServer(line)
                continue
            }
            let (command, judgement) = commands.capture(text, kind: .shell)
            switch judgement.action {
            case .allow, .alert:
                sendToServer(line)
            case .block:
                refuseLine(judgement.reason)
            case .hold:
                pending = PendingLine(enter: line, rest: bytes, sentAt: .now(), judged: true)
                client?.isPaused = true
                let bound = NIOLoopBound(self, eventLoop: eventLoop)
                commands.gate.hold(command: command, on: eventLoop) { decision, decider, message in
                    let inspector = bound.value
                    guard let held = inspector.pending else { return }
                    inspector.pending = nil
                    if decision == .allowed {
                        inspector.sendToServer(held.enter)
                    } else {
                        inspector.refuseLine(Self.refusal(judgement.reason, decider, message))
                    }
                    inspector.client?.isPaused = false
                    let waiting = held.rest + inspector.heldKeys
                    inspector.heldKeys = []
                    inspector.feedLines(waiting)
                    inspector.forwardEOFIfDone()
                }
                return
            }
        }
    }

    private func refuseLine(_ reason: String) {
        client?.send(ByteBuffer(string: "sluice: blocked: \(Self.oneLine(reason))\n"), type: .stdErr)
        client?.flushWrites()
    }

    private func sendToServer(_ bytes: [UInt8]) {
        guard !bytes.isEmpty, let server else { return }
        server.send(ByteBuffer(bytes: bytes))
        server.flushWrites()
    }

    /// The client sent EOF: it goes on to the target once nothing waits for a verdict (a last line without a
    /// newline is judged first).
    func clientEnded() {
        clientEOF = true
        if linesWithoutTerminal, pending == nil, !partialLine.isEmpty {
            let last = partialLine
            partialLine = []
            feedLines(last + [UInt8(ascii: "\n")])
        }
        forwardEOFIfDone()
    }

    private func forwardEOFIfDone() {
        guard clientEOF, pending == nil, heldKeys.isEmpty, !eofForwarded else { return }
        eofForwarded = true
        server?.closeOutputAfterWrites()
    }

    func channelClosed() {
        castFlush?.cancel()
        castFlush = nil
        record { try $0.close() }
        cast = nil
    }

    // MARK: Target to client

    func serverData(_ buffer: ByteBuffer, type: SSHChannelData.DataType) {
        _ = recorder.chunk(buffer, direction: .down)
        if tracker != nil {
            tracker?.serverOutput(buffer.readableBytesView)
            lastOutput = .now()
        }
        record { try $0.output(buffer.readableBytesView) }
        client?.send(buffer, type: type)
    }

    func exitStatus(_ status: Int) {
        guard let execIndex else { return }
        commands.finished(execIndex, CommandOutcome(exitStatus: status))
        self.execIndex = nil
    }

    func exitSignal(_ name: String) {
        guard let execIndex else { return }
        commands.finished(execIndex, CommandOutcome(exitSignal: name))
        self.execIndex = nil
    }

    // MARK: Recording

    private func startRecording(title: String?) {
        guard cast == nil, let pty else { return }
        let number = sessionNumber()
        let path =
            number == 1
            ? recording.directory.recordingPath(recorder.flowID)
            : (recording.directory.recordingsPath as NSString).appendingPathComponent("\(recorder.flowID.rawValue)-\(number).cast")
        let header = AsciicastHeader(
            width: max(1, pty.terminalCharacterWidth), height: max(1, pty.terminalRowHeight), term: pty.term, title: title
        )
        do {
            try recording.directory.prepareRecordings()
            cast = try AsciicastRecording(path: path, header: header)
        } catch {
            commands.alert(level: .high, rule: "recording", "cannot record the session: \(error)")
            return
        }
    }

    /// Arms one flush `AsciicastRecording.flushInterval` from now when lines wait and none is armed.
    private func scheduleFlush() {
        guard castFlush == nil, cast?.hasPendingLines == true else { return }
        let bound = NIOLoopBound(self, eventLoop: eventLoop)
        let interval = TimeAmount.milliseconds(Int64(AsciicastRecording.flushInterval * 1000))
        castFlush = eventLoop.scheduleTask(in: interval) {
            let inspector = bound.value
            inspector.castFlush = nil
            inspector.record { try $0.flush() }
        }
    }

    /// Writes to the recording; a failure (a full disk) is said once as an alert and ends the recording, not the
    /// session.
    private func record(_ write: (AsciicastRecording) throws -> Void) {
        guard let cast else { return }
        do {
            try write(cast)
            scheduleFlush()
        } catch {
            commands.alert(level: .high, rule: "recording", "the session's recording stopped: \(error)")
            castFlush?.cancel()
            castFlush = nil
            self.cast = nil
        }
    }

    /// What the user reads when a held command is refused: the operator's own words when they gave some.
    static func refusal(_ reason: String, _ decider: Decider, _ message: String?) -> String {
        if let message { return message }
        switch decider {
        case .timeout: return "\(reason); nobody decided within hold_timeout"
        case .operator, .policy, .closed: return "\(reason), refused by the operator"
        }
    }

    static func oneLine(_ text: String) -> String {
        String(text.map { $0.isNewline ? " " : $0 }.prefix(300))
    }
}
