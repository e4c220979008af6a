import Foundation
import NIOCore
import SluiceCore
import SluiceModel
import SluiceStore
import SluiceTLS

/// `ssh://LISTEN=>TARGET`: Sluice is an SSH server to the client and an SSH client to the target, relaying each
/// session channel between the two and recording it as one `ssh` flow per connection.
public struct SSHModule: ProtocolModule {
    public static var schemes: [ListenScheme] { [.ssh] }

    /// Behind a transparent listener: a client's first bytes are its identification string (RFC 4253 §4.2: both
    /// sides send theirs at once), so SSH is recognised on any port.
    public static var transparentProtocols: [TransparentProtocol] {
        [TransparentProtocol(scheme: .ssh, ports: [22], opening: .clientFirst(sniff))]
    }

    let hostKey: SSHHostKey
    let dataDirectory: DataDirectory
    /// What the top-level `ssh:` says.
    let profile: Profile
    /// What targets with an `ssh:` of their own say, by their row in the target table.
    let targetProfiles: [Int: Profile]

    /// How sessions to some targets go: the settings, the credentials they name (read once, at start) and the target
    /// host keys trusted.
    struct Profile: Sendable {
        let settings: SSHSettings
        let credentials: SSHCredentials
        let targetKeys: TargetHostKeys
    }

    /// Loads (or makes, on first run) Sluice's host key in the data directory, and the credentials `ssh:` (and each
    /// target's `ssh:`) names. Errors say which file and what is wrong with it.
    public init(configuration: Configuration) throws {
        hostKey = try SSHHostKey.loadOrCreate(in: configuration.dataDirectory)
        dataDirectory = DataDirectory(path: configuration.dataDirectory)
        func knownHosts(_ settings: SSHSettings) -> String {
            settings.knownHosts ?? (configuration.dataDirectory as NSString).appendingPathComponent("known_hosts")
        }
        let main = Profile(
            settings: configuration.ssh, credentials: try SSHCredentials.load(configuration.ssh),
            targetKeys: TargetHostKeys(path: knownHosts(configuration.ssh), policy: configuration.ssh.hostKeyPolicy)
        )
        var targetProfiles: [Int: Profile] = [:]
        for target in configuration.transparent.targets {
            guard let settings = target.ssh else { continue }
            let credentials: SSHCredentials
            do {
                credentials = try SSHCredentials.load(settings)
            } catch {
                throw SSHCredentials.LoadError(description: "\(target.label): \(error)")
            }
            // One file, one keeper: a target that trusts the same known_hosts the same way shares it.
            let sameKeys = knownHosts(settings) == knownHosts(configuration.ssh) && settings.hostKeyPolicy == configuration.ssh.hostKeyPolicy
            let keys = sameKeys ? main.targetKeys : TargetHostKeys(path: knownHosts(settings), policy: settings.hostKeyPolicy)
            targetProfiles[target.index] = Profile(settings: settings, credentials: credentials, targetKeys: keys)
        }
        self.profile = main
        self.targetProfiles = targetProfiles
    }

    public func accept(_ connection: ClientConnection) {
        guard let target = connection.spec.target, let recorder = connection.openFlow(kind: .ssh, server: target) else {
            connection.channel.close(promise: nil)
            return
        }
        let profile = connection.route?.target.flatMap { targetProfiles[$0.index] } ?? self.profile
        SSHProxySession(connection: connection, recorder: recorder, target: target, module: self, profile: profile).start()
    }

    /// `SSH-2.0-` (or `SSH-1.99-`, a client that also speaks version 1: RFC 4253 §5.1) opens an SSH client's stream.
    static func sniff(_ bytes: ByteBufferView, port: Int) -> SniffResult {
        var fits = false
        for version in identificationPrefixes {
            if bytes.starts(with: version) { return .match }
            if version.starts(with: bytes) { fits = true }
        }
        return fits ? .needMoreData : .noMatch
    }

    static let identificationPrefixes: [[UInt8]] = [Array("SSH-2.0-".utf8), Array("SSH-1.99-".utf8)]
}

extension ListenScheme {
    /// SSH man-in-the-middle to one target.
    public static let ssh = ListenScheme(name: "ssh", target: .endpoint)
}
