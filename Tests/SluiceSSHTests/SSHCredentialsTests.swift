import Foundation
import SluiceCore
import Testing

@testable import SluiceSSH

/// The files `ssh.target_login` and `ssh.users` name: each way one can be wrong is one line naming the setting and
/// the file.
@Suite struct SSHCredentialsTests {
    private func problem(_ settings: SSHSettings) -> String? {
        do {
            _ = try SSHCredentials.load(settings)
            return nil
        } catch {
            return error.description
        }
    }

    private func settings(key: String? = nil, password: String? = nil, users: [String: String]) -> SSHSettings {
        var settings = SSHSettings()
        settings.targetLogin = SSHSettings.TargetLogin(user: "deploy", keyFile: key, passwordFile: password)
        settings.users = users
        return settings
    }

    private func file(_ text: String) throws -> String {
        let path = NSTemporaryDirectory() + "sluice-ssh-credentials-\(UUID().uuidString)"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func aMissingFileIsSaidToBeMissing() {
        #expect(
            problem(settings(key: "/nonexistent/key", users: ["alice": "/nonexistent/alice.pub"]))
                == "ssh.target_login.key_file /nonexistent/key: cannot read: no such file or directory")
        #expect(
            problem(settings(password: "/nonexistent/password", users: [:]))
                == "ssh.target_login.password_file /nonexistent/password: cannot read: no such file or directory")
    }

    @Test func aMissingUsersFileNamesTheUser() throws {
        let password = try file("secret\n")
        defer { try? FileManager.default.removeItem(atPath: password) }
        #expect(
            problem(settings(password: password, users: ["alice": "/nonexistent/alice.pub"]))
                == "ssh.users.alice /nonexistent/alice.pub: cannot read: no such file or directory")
    }

    @Test func anEmptyPasswordFileAndAKeyThatIsNotOneAreSaidSo() throws {
        let empty = try file("\n")
        let notAKey = try file("x\n")
        defer {
            try? FileManager.default.removeItem(atPath: empty)
            try? FileManager.default.removeItem(atPath: notAKey)
        }
        #expect(problem(settings(password: empty, users: [:])) == "ssh.target_login.password_file \(empty): the file is empty")
        #expect(problem(settings(key: notAKey, users: [:]))?.hasPrefix("ssh.target_login.key_file \(notAKey): not an OpenSSH private key") == true)
    }
}
