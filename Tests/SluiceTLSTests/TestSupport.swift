import Foundation
import NIOCore
import NIOEmbedded
import NIOSSL
import Testing

/// A fresh directory per test (Swift Testing runs tests in parallel); removed by `cleanup()`.
struct TemporaryDirectory {
    let path: String

    init() throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-tls-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func cleanup() {
        try? FileManager.default.removeItem(atPath: path)
    }
}

struct CommandResult {
    var status: Int32
    var output: String
}

/// Runs the openssl CLI, the independent referee for what our certificates really contain.
func openssl(_ arguments: [String]) throws -> CommandResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["openssl"] + arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return CommandResult(status: process.terminationStatus, output: String(decoding: data, as: UTF8.self))
}

func fileMode(_ path: String) throws -> Int {
    let attributes = try FileManager.default.attributesOfItem(atPath: path)
    return (attributes[.posixPermissions] as? NSNumber)?.intValue ?? -1
}

/// The bytes NIOSSL's client really sends first, captured from an EmbeddedChannel (no network involved).
func captureClientHello(serverName: String?, alpn: [String] = []) throws -> [UInt8] {
    var configuration = TLSConfiguration.makeClientConfiguration()
    configuration.applicationProtocols = alpn
    let context = try NIOSSLContext(configuration: configuration)
    let channel = EmbeddedChannel()
    defer { _ = try? channel.finish() }
    try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: context, serverHostname: serverName))
    channel.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: 443), promise: nil)
    var bytes: [UInt8] = []
    while let buffer = try channel.readOutbound(as: ByteBuffer.self) {
        bytes += Array(buffer.readableBytesView)
    }
    return bytes
}

/// A tiny deterministic generator so the randomized test replays the same cases on every run.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Hand-built ClientHellos, for shapes NIOSSL never sends (huge, odd fragmentation, broken lengths).
enum HelloBuilder {
    static func u16(_ value: Int) -> [UInt8] { [UInt8(value >> 8 & 0xff), UInt8(value & 0xff)] }
    static func u24(_ value: Int) -> [UInt8] { [UInt8(value >> 16 & 0xff)] + u16(value) }

    static func extensionBytes(_ type: Int, _ payload: [UInt8]) -> [UInt8] {
        u16(type) + u16(payload.count) + payload
    }

    static func serverName(_ name: String) -> [UInt8] {
        let entry = [0] + u16(name.utf8.count) + Array(name.utf8)
        return extensionBytes(0x0000, u16(entry.count) + entry)
    }

    static func alpn(_ protocols: [String]) -> [UInt8] {
        let list = protocols.flatMap { [UInt8($0.utf8.count)] + Array($0.utf8) }
        return extensionBytes(0x0010, u16(list.count) + list)
    }

    /// The ClientHello handshake message (type, u24 length, body).
    static func handshake(extensions: [UInt8]?, sessionIDLength: Int = 32) -> [UInt8] {
        var body: [UInt8] = [0x03, 0x03]
        body += [UInt8](repeating: 0xAB, count: 32)
        body += [UInt8(sessionIDLength)] + [UInt8](repeating: 0x11, count: min(sessionIDLength, 32))
        body += u16(4) + [0x13, 0x01, 0x13, 0x02]
        body += [1, 0]
        if let extensions {
            body += u16(extensions.count) + extensions
        }
        return [0x01] + u24(body.count) + body
    }

    /// Wraps a handshake message in handshake records of at most `fragment` payload bytes each.
    static func records(_ handshake: [UInt8], fragment: Int = 16_384) -> [UInt8] {
        var out: [UInt8] = []
        var index = 0
        while index < handshake.count {
            let end = min(index + fragment, handshake.count)
            out += [0x16, 0x03, 0x01] + u16(end - index) + handshake[index..<end]
            index = end
        }
        return out
    }
}
