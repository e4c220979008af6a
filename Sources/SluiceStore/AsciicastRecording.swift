import Foundation
import SluiceModel

#if canImport(Glibc)
    import Glibc
#endif

/// A terminal session being recorded to `recordings/<flow-id>.cast` (asciicast v2, mode 0600).
///
/// Called on the SSH connection's event loop for every output chunk, so an event costs an encode into memory and
/// no system call: lines are written when `flushBytes` have gathered or `flushInterval` has passed since the first
/// unwritten one, and on `close`. The owner also calls `flush()` from a timer while `hasPendingLines` (every
/// `flushInterval`), so the last output before a pause is on disk too. Every write appends whole lines, so a crash
/// leaves a file that plays up to the last flush (`AsciicastReader` also tolerates a torn last line).
///
/// A failed write (a full disk) throws one line and keeps the unwritten lines for the next try, up to
/// `maxPendingBytes`; beyond that they are dropped and, once writing works again, a marker says how much is missing.
/// The session itself never fails because its recording did.
public final class AsciicastRecording {
    public static let flushBytes = 32 << 10
    public static let flushInterval: Double = 0.25
    public static let maxPendingBytes = 4 << 20

    public let path: String
    /// When the recording started: event times are seconds since it.
    public let start: Date
    private var encoder: AsciicastEncoder
    private var descriptor: Int32
    private var pending = ByteSink(capacity: 64 << 10)
    /// Time of the oldest unwritten line, seconds since `start`.
    private var pendingSince: Double?
    private var lastTime: Double = 0
    private var droppedBytes = 0

    /// Creates `recordings/<flow-id>.cast` (and the directory, 0700) and writes the header at once, so even a
    /// session that ends before its first output leaves a valid file. An old file of the same name is replaced: flow
    /// ids restart only with a new store.
    public convenience init(
        directory: DataDirectory, flow: FlowID, header: AsciicastHeader, start: Date = Date()
    ) throws(StoreError) {
        try directory.prepareRecordings()
        try self.init(path: directory.recordingPath(flow), header: header, start: start)
    }

    /// Records to `path`, created 0600 (truncated when it exists; a symbolic link there is refused).
    public init(path: String, header: AsciicastHeader, start: Date = Date()) throws(StoreError) {
        self.path = path
        self.start = start
        var header = header
        if header.timestamp == nil { header.timestamp = Int64(start.timeIntervalSince1970) }
        encoder = AsciicastEncoder(header: header)
        // O_NONBLOCK: a FIFO planted there would otherwise block the SSH connection's event loop in open() until
        // something read it; it fails now (ENXIO), or is refused below. It changes nothing for a regular file.
        descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0o600)
        guard descriptor >= 0 else {
            throw StoreError("cannot create recording \(path): \(String(cString: strerror(errno)).lowercased())")
        }
        var info = stat()
        guard fstat(descriptor, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else {
            Glibc.close(descriptor)
            // deinit runs for an initializer that throws after every property is set: it must not close the
            // number again (by then it may be another thread's socket).
            descriptor = -1
            throw StoreError("cannot record to \(path): not a regular file")
        }
        // An existing file keeps its old mode through O_CREAT: recordings hold secrets, so make it private.
        fchmod(descriptor, 0o600)
        encoder.appendHeader(to: &pending)
        try flush()
    }

    deinit {
        if descriptor >= 0 { Glibc.close(descriptor) }
    }

    /// Whether lines wait to be written: the owner's timer calls `flush()` then.
    public var hasPendingLines: Bool { pending.count > 0 || droppedBytes > 0 }

    /// Bytes the server sent to the client's terminal.
    public func output(_ bytes: some Collection<UInt8>, at time: Date = Date()) throws(StoreError) {
        guard descriptor >= 0 else { return }
        let seconds = elapsed(time)
        encoder.output(bytes, at: seconds, to: &pending)
        try flushIfDue(at: seconds)
    }

    /// Keys the client typed (only when input recording is on: they hold passwords).
    public func input(_ bytes: some Collection<UInt8>, at time: Date = Date()) throws(StoreError) {
        guard descriptor >= 0 else { return }
        let seconds = elapsed(time)
        encoder.input(bytes, at: seconds, to: &pending)
        try flushIfDue(at: seconds)
    }

    /// The client's terminal changed size (window-change).
    public func resize(columns: Int, rows: Int, at time: Date = Date()) throws(StoreError) {
        guard descriptor >= 0 else { return }
        let seconds = elapsed(time)
        encoder.resize(columns: columns, rows: rows, at: seconds, to: &pending)
        try flushIfDue(at: seconds)
    }

    /// A marker at a captured command or an alert, so a player can jump to it.
    public func marker(_ label: String, at time: Date = Date()) throws(StoreError) {
        guard descriptor >= 0 else { return }
        let seconds = elapsed(time)
        encoder.marker(label, at: seconds, to: &pending)
        try flushIfDue(at: seconds)
    }

    /// Writes what is pending. Only whole lines reach the file: a write cut short is taken back.
    public func flush() throws(StoreError) {
        guard descriptor >= 0 else { return }
        if droppedBytes > 0 {
            // Lines were dropped while writing failed: say so in the file, where a player shows it.
            let dropped = droppedBytes
            droppedBytes = 0
            var note = ByteSink(capacity: 128)
            encoder.marker(
                "[sluice] \(dropped) bytes of this recording were lost (write failed)", at: lastTime, to: &note)
            note.withUnsafeBytes { buffer in
                var all = ByteSink(capacity: buffer.count + pending.count)
                all.append(buffer)
                pending.withUnsafeBytes { all.append($0) }
                pending = all
            }
        }
        guard pending.count > 0 else { return }
        let failure: Int32? = pending.withUnsafeBytes { buffer in
            guard let base = buffer.baseAddress else { return nil }
            let start = lseek(descriptor, 0, SEEK_END)
            var offset = 0
            while offset < buffer.count {
                let written = Glibc.write(descriptor, base + offset, buffer.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    let failure = errno
                    if start >= 0 { _ = ftruncate(descriptor, start) }
                    return failure
                }
                offset += written
            }
            return nil
        }
        guard let failure else {
            pending.removeAll()
            pendingSince = nil
            return
        }
        if pending.count > Self.maxPendingBytes {
            droppedBytes += pending.count
            pending.removeAll()
        }
        throw StoreError("cannot write recording \(path): \(String(cString: strerror(failure)).lowercased())")
    }

    /// Ends the recording: the streams' incomplete characters, the last lines, and the file closed. Later events are
    /// ignored. Closes the file even when the last write fails.
    public func close(at time: Date = Date()) throws(StoreError) {
        guard descriptor >= 0 else { return }
        defer {
            Glibc.close(descriptor)
            descriptor = -1
        }
        encoder.finish(at: elapsed(time), to: &pending)
        try flush()
    }

    private func elapsed(_ time: Date) -> Double {
        lastTime = max(lastTime, time.timeIntervalSince(start))
        return lastTime
    }

    private func flushIfDue(at seconds: Double) throws(StoreError) {
        guard pending.count > 0 else { return }
        let since = pendingSince ?? seconds
        pendingSince = since
        if pending.count >= Self.flushBytes || seconds - since >= Self.flushInterval {
            try flush()
        }
    }
}

@available(*, unavailable)
extension AsciicastRecording: Sendable {}
