import Foundation
import NIOSSH
import SluiceCore
import SluiceModel

/// How the client's login becomes Sluice's login on the target (`ssh.target_login`, `ssh.users` in sluice.yaml).
enum SSHCredentials {
    /// The client's user name and password are tried on the target (the default).
    case passthrough
    /// Sluice logs in to the target with its own key or password; clients log in to Sluice with a key listed for
    /// their user name.
    case configured(TargetLogin, users: [String: [NIOSSHPublicKey]])

    struct TargetLogin {
        /// The target user; nil: the name the client logged in to Sluice with.
        var user: String?
        var offer: NIOSSHUserAuthenticationOffer.Offer
    }

    struct LoadError: Error, CustomStringConvertible {
        var description: String
    }

    /// The text of a file a setting names; a file that cannot be read is one line naming the setting, the file and
    /// why ("no such file or directory"), not Foundation's error dump.
    private static func read(_ path: String, for setting: String) throws(LoadError) -> String {
        do {
            return try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw LoadError(description: "\(setting) \(path): cannot read: \(describeFileError(error))")
        }
    }

    /// Reads the files the settings name. Errors name the file and what is wrong with it.
    static func load(_ settings: SSHSettings) throws(LoadError) -> SSHCredentials {
        guard let login = settings.targetLogin else { return .passthrough }
        let offer: NIOSSHUserAuthenticationOffer.Offer
        if let keyFile = login.keyFile {
            let text = try read(keyFile, for: "ssh.target_login.key_file")
            do {
                offer = .privateKey(.init(privateKey: try OpenSSHPrivateKey.parse(text)))
            } catch {
                throw LoadError(description: "ssh.target_login.key_file \(keyFile): \(error)")
            }
        } else if let passwordFile = login.passwordFile {
            let password = try read(passwordFile, for: "ssh.target_login.password_file").trimmingCharacters(in: .newlines)
            guard !password.isEmpty else {
                throw LoadError(description: "ssh.target_login.password_file \(passwordFile): the file is empty")
            }
            offer = .password(.init(password: password))
        } else {
            throw LoadError(description: "ssh.target_login needs key_file or password_file")
        }
        var users: [String: [NIOSSHPublicKey]] = [:]
        for (name, file) in settings.users {
            let text = try read(file, for: "ssh.users.\(name)")
            users[name] = authorizedKeys(text)
            if users[name]?.isEmpty != false {
                throw LoadError(description: "ssh.users.\(name) \(file): no Ed25519 or ECDSA public key in it (one `ssh-ed25519 AAAA…` per line)")
            }
        }
        guard !users.isEmpty else {
            throw LoadError(description: "ssh.target_login is set but ssh.users lists nobody who may log in to Sluice")
        }
        return .configured(TargetLogin(user: login.user, offer: offer), users: users)
    }

    /// The keys of an `authorized_keys`-style file: `TYPE BASE64 [comment]` per line, options before it skipped.
    /// Key types swift-nio-ssh cannot verify (RSA) are left out.
    static func authorizedKeys(_ text: String) -> [NIOSSHPublicKey] {
        text.split(whereSeparator: \.isNewline).compactMap { line in
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            guard let index = fields.firstIndex(where: { $0.hasPrefix("ssh-") || $0.hasPrefix("ecdsa-") }), index + 1 < fields.count else {
                return nil
            }
            return try? NIOSSHPublicKey(openSSHPublicKey: "\(fields[index]) \(fields[index + 1])")
        }
    }
}
