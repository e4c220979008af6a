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

    let hostKey: SSHHostKey
    let targetKeys: TargetHostKeys
    let settings: SSHSettings
    let dataDirectory: DataDirectory
    let credentials: SSHCredentials

    /// Loads (or makes, on first run) Sluice's host key in the data directory, and the credentials `ssh:` names.
    /// Errors say which file and what is wrong with it.
    public init(configuration: Configuration) throws {
        credentials = try SSHCredentials.load(configuration.ssh)
        hostKey = try SSHHostKey.loadOrCreate(in: configuration.dataDirectory)
        settings = configuration.ssh
        dataDirectory = DataDirectory(path: configuration.dataDirectory)
        let knownHosts = configuration.ssh.knownHosts ?? (configuration.dataDirectory as NSString).appendingPathComponent("known_hosts")
        targetKeys = TargetHostKeys(path: knownHosts, policy: configuration.ssh.hostKeyPolicy)
    }

    public func accept(_ connection: ClientConnection) {
        guard let target = connection.spec.target, let recorder = connection.openFlow(kind: .ssh, server: target) else {
            connection.channel.close(promise: nil)
            return
        }
        SSHProxySession(connection: connection, recorder: recorder, target: target, module: self).start()
    }
}

extension ListenScheme {
    /// SSH man-in-the-middle to one target.
    public static let ssh = ListenScheme(name: "ssh", target: .endpoint)
}
