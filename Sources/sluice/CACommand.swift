import ArgumentParser
import Foundation
import SluiceCore
import SluiceModel
import SluiceHTTP
import SluiceTLS

/// `sluice ca`: where Sluice's certificate authority lives and its fingerprint; `--export pem` prints the
/// certificate that clients must trust for TLS interception. Creates the CA when there is none yet.
struct CACommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ca", abstract: "Show Sluice's CA certificate (created on first use), or export it to trust."
    )

    enum Format: String, ExpressibleByArgument {
        case pem
    }

    @OptionGroup var store: StoreOptions

    @Option(name: .long, help: "Print the CA certificate in this format (pem) to stdout, or to --output.")
    var export: Format?

    @Option(name: .shortAndLong, help: "With --export: write to this file instead of stdout.")
    var output: String?

    func run() throws {
        umask(0o077)
        let tls: TLSInterception
        do {
            var configuration = try store.loadConfiguration()
            configuration.dataDirectory = store.dataDirectory(configuration).path
            tls = try TLSInterception.load(configuration)
        } catch {
            throw fail(error)
        }
        let authority = tls.authority
        guard export != nil else {
            print("certificate  \(authority.certificatePath)")
            print("key          \(authority.keyPath)  (private, mode 0600)")
            print("sha256       \(authority.fingerprintSHA256)")
            print("trust it:    curl --cacert \(authority.certificatePath) ...  (or sluice ca --export pem > sluice-ca.pem)")
            return
        }
        guard let output else {
            print(authority.certificatePEM, terminator: authority.certificatePEM.hasSuffix("\n") ? "" : "\n")
            return
        }
        do {
            try authority.certificatePEM.write(toFile: Configuration.expandTilde(output), atomically: true, encoding: .utf8)
            try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: Configuration.expandTilde(output))
        } catch {
            throw fail("cannot write \(output): \(describeFileError(error))")
        }
    }
}
