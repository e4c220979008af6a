import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOSSH
import SluiceCore
import SluiceModel

/// The `known_hosts` file Sluice checks targets against, shared by every SSH connection: read on each check (so an
/// operator's edit applies to the next session), appended to under a lock when trust-on-first-use records a key.
final class TargetHostKeys: Sendable {
    let path: String
    let policy: SSHSettings.HostKeyPolicy
    private let lock = NIOLock()

    init(path: String, policy: SSHSettings.HostKeyPolicy) {
        self.path = path
        self.policy = policy
    }

    /// Whether to go on with a target that presented `key`; the error says why not, in one line for the flow.
    func check(_ key: NIOSSHPublicKey, host: String, port: Int) -> Result<Void, HostKeyError> {
        lock.withLock {
            let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
            let known = KnownHosts(text: text)
            let name = KnownHosts.hostName(host: host, port: port)
            let fingerprint = KnownHosts.fingerprint(of: key)
            switch known.check(key, host: host, port: port) {
            case .trusted:
                return .success(())
            case .revoked(let line):
                return .failure(HostKeyError("target \(name) presented a revoked host key \(fingerprint) (\(path):\(line))"))
            case .changed(let line):
                return .failure(
                    HostKeyError(
                        "target \(name)'s host key changed: it presented \(fingerprint), \(path):\(line) holds another "
                            + "(someone may be in the middle, or the server was reinstalled; remove that line if you trust the new key)"
                    )
                )
            case .unknown:
                guard policy == .tofu else {
                    return .failure(
                        HostKeyError(
                            "target \(name)'s host key \(fingerprint) is not in \(path): add it "
                                + "(ssh-keyscan -p \(port) \(host) >> \(path)) or set ssh.host_key_policy: tofu"
                        )
                    )
                }
                do {
                    try append(KnownHosts.line(for: key, host: host, port: port) + "\n", needsNewline: !text.isEmpty && !text.hasSuffix("\n"))
                    return .success(())
                } catch {
                    return .failure(HostKeyError("cannot record \(name)'s host key in \(path): \(describe(error))"))
                }
            }
        }
    }

    private func append(_ line: String, needsNewline: Bool) throws {
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { throw HostKeyError(String(cString: strerror(errno))) }
        defer { close(fd) }
        let bytes = Array(((needsNewline ? "\n" : "") + line).utf8)
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard written == bytes.count else { throw HostKeyError(String(cString: strerror(errno))) }
    }

    /// swift-nio-ssh's question, answered from the file.
    final class Delegate: NIOSSHClientServerAuthenticationDelegate {
        let keys: TargetHostKeys
        let target: Endpoint
        /// Why the key was refused, for the flow's error.
        var refusal: HostKeyError?

        init(keys: TargetHostKeys, target: Endpoint) {
            self.keys = keys
            self.target = target
        }

        func validateHostKey(hostKey: NIOSSHPublicKey, validationCompletePromise: EventLoopPromise<Void>) {
            switch keys.check(hostKey, host: target.host, port: target.port) {
            case .success:
                validationCompletePromise.succeed(())
            case .failure(let error):
                refusal = error
                validationCompletePromise.fail(error)
            }
        }
    }
}

struct HostKeyError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
