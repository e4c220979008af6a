import Foundation

/// The TLS settings the last recorder of a data directory ran with (`<data-dir>/recorder.json`), so that
/// `sluice replay` after a headless run trusts the same servers without being told again: flags given to the
/// recorder are in no config file the replay could read.
public struct RecorderSettings: Codable, Equatable, Sendable {
    public var upstreamCA: String?
    public var insecureUpstream: Bool

    enum CodingKeys: String, CodingKey {
        case upstreamCA = "upstream_ca"
        case insecureUpstream = "insecure_upstream"
    }

    public init(upstreamCA: String?, insecureUpstream: Bool) {
        self.upstreamCA = upstreamCA
        self.insecureUpstream = insecureUpstream
    }

    static func path(in directory: DataDirectory) -> String {
        (directory.path as NSString).appendingPathComponent("recorder.json")
    }

    /// Written by a recorder at start; a failure to write only costs the replay's convenience, so it is ignored.
    public func save(in directory: DataDirectory) {
        guard let data = try? JSONEncoder().encode(self) else { return }
        try? data.write(to: URL(fileURLWithPath: Self.path(in: directory)), options: .atomic)
    }

    /// What the last recorder ran with, or nil when no recorder wrote it (or it cannot be read).
    public static func load(from directory: DataDirectory) -> RecorderSettings? {
        guard let data = FileManager.default.contents(atPath: path(in: directory)) else { return nil }
        return try? JSONDecoder().decode(RecorderSettings.self, from: data)
    }
}
