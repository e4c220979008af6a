import Foundation
import SluiceModel

/// `<data-dir>`: `sluice.sqlite`, `logs/YYYY-MM-DD/*.jsonl`, `exports/` (what the TUI's `w` saves), `ca/`,
/// `recordings/<flow-id>.cast` (terminal sessions as asciicast).
/// Created 0700; every file in it 0600, because recorded traffic holds secrets.
public struct DataDirectory: Sendable {
    public let path: String

    public init(path: String) {
        self.path = path
    }

    public var databasePath: String { (path as NSString).appendingPathComponent("sluice.sqlite") }
    public var logsPath: String { (path as NSString).appendingPathComponent("logs") }
    public var exportsPath: String { (path as NSString).appendingPathComponent("exports") }
    public var recordingsPath: String { (path as NSString).appendingPathComponent("recordings") }

    /// `recordings/<flow-id>.cast`: where a terminal session's recording is, whether or not it exists.
    public func recordingPath(_ flow: FlowID) -> String {
        (recordingsPath as NSString).appendingPathComponent("\(flow.rawValue).cast")
    }

    /// Creates the directory and its `recordings/` (each 0700) when missing.
    public func prepareRecordings() throws(StoreError) {
        try Self.makeDirectory(path)
        try Self.makeDirectory(recordingsPath)
    }

    /// Creates the directory and its `exports/` (each 0700) when missing, for a file the TUI saves.
    public func prepareExports() throws(StoreError) {
        try Self.makeDirectory(path)
        try Self.makeDirectory(exportsPath)
    }

    /// Creates the directory (0700) when missing and checks that it can be written, so a bad `--data-dir`
    /// fails at start with one line instead of at the first write.
    public func prepareForWriting() throws(StoreError) {
        try Self.makeDirectory(path)
        let probe = (path as NSString).appendingPathComponent(".write-test-\(getpid())")
        guard FileManager.default.createFile(atPath: probe, contents: Data(), attributes: [.posixPermissions: 0o600]) else {
            throw StoreError("data directory \(path) is not writable: \(String(cString: strerror(errno)).lowercased())")
        }
        unlink(probe)
    }

    static func makeDirectory(_ path: String) throws(StoreError) {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw StoreError("\(path) exists and is not a directory") }
            return
        }
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw StoreError("cannot create data directory \(path): \(whyNotCreatable(path) ?? describeFileError(error))")
        }
    }

    /// Foundation reports a file in the way, or a read-only parent, only as "error 512"; find the real reason.
    static func whyNotCreatable(_ path: String) -> String? {
        var ancestor = (path as NSString).deletingLastPathComponent
        while !ancestor.isEmpty, ancestor != "/" {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: ancestor, isDirectory: &isDirectory) {
                if !isDirectory.boolValue { return "\(ancestor) is not a directory" }
                if !FileManager.default.isWritableFile(atPath: ancestor) { return "\(ancestor) is not writable (permission denied)" }
                return nil
            }
            ancestor = (ancestor as NSString).deletingLastPathComponent
        }
        return nil
    }
}

/// One line saying what went wrong with the store.
public struct StoreError: Error, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
