import NIOCore
import SluiceMySQL
import Testing

@Suite("MySQL handshake")
struct MySQLHandshakeTests {
    /// MariaDB 10.11.19's greeting payload (Debian 12, started with a TLS certificate), connection id 6.
    static let mariaDBGreeting = hexBytes(
        """
        0a 35 2e 35 2e 35 2d 31 30 2e 31 31 2e 31 39 2d 4d 61 72 69 61 44 42 2d 30 2b 64 65 62 31 32 75 31 00
        06 00 00 00  4d 2a 29 30 55 39 5f 51  00  fe ff  2d  02 00  ff 81  15  00 00 00 00 00 00  1d 00 00 00
        57 42 27 38 24 4b 2f 47 56 5b 45 29 00
        6d 79 73 71 6c 5f 6e 61 74 69 76 65 5f 70 61 73 73 77 6f 72 64 00
        """)

    /// The HandshakeResponse41 of MariaDB's `mysql` client (libmariadb 3.3.20) logging in as sluice_native to the
    /// database sluice, with its connection attributes (a mysql_native_password answer to a throwaway scramble).
    static let mysqlClientResponse = hexBytes(
        """
        8c a2 bf 00  00 00 10 00  21  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00  1d 00 00 00
        73 6c 75 69 63 65 5f 6e 61 74 69 76 65 00
        14 a2 00 84 75 62 78 af 5b bc 9e 13 94 35 e5 d8 ff b0 d7 2c 3f
        73 6c 75 69 63 65 00
        6d 79 73 71 6c 5f 6e 61 74 69 76 65 5f 70 61 73 73 77 6f 72 64 00
        7f 03 5f 6f 73 05 4c 69 6e 75 78 0c 5f 63 6c 69 65 6e 74 5f 6e 61 6d 65 0a 6c 69 62 6d 61 72 69 61 64 62
        04 5f 70 69 64 05 32 31 32 32 30 0f 5f 63 6c 69 65 6e 74 5f 76 65 72 73 69 6f 6e 06 33 2e 33 2e 32 30
        09 5f 70 6c 61 74 66 6f 72 6d 06 78 38 36 5f 36 34 0c 70 72 6f 67 72 61 6d 5f 6e 61 6d 65 05 6d 79 73 71
        6c 0c 5f 73 65 72 76 65 72 5f 68 6f 73 74 09 31 32 37 2e 30 2e 30 2e 31
        """)

    // MARK: Greeting

    @Test("a real MariaDB 10.11 greeting decodes field by field")
    func mariaDBGreetingDecodes() throws {
        let handshake = try MySQLHandshake(payload: buffer(Self.mariaDBGreeting))
        #expect(handshake.protocolVersion == 10)
        #expect(handshake.serverVersion == "5.5.5-10.11.19-MariaDB-0+deb12u1")
        #expect(handshake.isMariaDB)
        #expect(handshake.connectionID == 6)
        #expect(handshake.scramblePart1 == buffer(hexBytes("4d 2a 29 30 55 39 5f 51")))
        #expect(handshake.scramblePart2 == buffer(hexBytes("57 42 27 38 24 4b 2f 47 56 5b 45 29 00")))
        #expect(handshake.scramble == hexBytes("4d 2a 29 30 55 39 5f 51 57 42 27 38 24 4b 2f 47 56 5b 45 29"))
        #expect(handshake.capabilities.rawValue == 0x81FF_FFFE)
        #expect(handshake.capabilities.low == 0xFFFE)
        #expect(handshake.capabilities.high == 0x81FF)
        #expect(handshake.capabilities.contains([.protocol41, .secureConnection, .pluginAuth, .ssl, .compress]))
        #expect(handshake.capabilities.contains(.deprecateEOF))
        #expect(!handshake.capabilities.contains(.clientMySQL))
        #expect(handshake.mariaDBCapabilities == [.progress, .stmtBulkOperations, .extendedMetadata, .cacheMetadata])
        #expect(handshake.characterSet == 45)
        #expect(handshake.status == .autocommit)
        #expect(handshake.scrambleLength == 21)
        #expect(handshake.authPluginName == "mysql_native_password")
        #expect(try MySQLHandshake.decodeGreeting(buffer(Self.mariaDBGreeting)) == .handshake(handshake))
    }

    @Test("every captured greeting decodes")
    func capturedGreetings() throws {
        for session in [MariaDBCaptures.classic, MariaDBCaptures.deprecateEOF, MariaDBCaptures.cacheMetadata] {
            let payload = try #require(session[named: "greeting"].serverPayloads.first)
            let handshake = try MySQLHandshake(payload: payload)
            #expect(handshake.authPluginName == "mysql_native_password")
            #expect(handshake.scramble.count == 20)
        }
    }

    @Test("clearing Sluice's bits changes only the capability bytes, never the scramble")
    func rewriteGreeting() throws {
        let payload = buffer(Self.mariaDBGreeting)
        let rewritten = try MySQLHandshake.rewritingCapabilities(of: payload, clearing: .clearedBySluice)
        let before = Self.mariaDBGreeting
        let after = Array(rewritten.readableBytesView)
        #expect(after.count == before.count)
        let changed = (0..<before.count).filter { before[$0] != after[$0] }
        // SSL (0x800) and COMPRESS (0x20) are in the low u16 at offset 47; this server sets neither ZSTD nor QUERY
        // ATTRIBUTES, so the high u16 at offset 52 stays.
        #expect(changed == [47, 48])
        let decoded = try MySQLHandshake(payload: rewritten)
        #expect(decoded.capabilities.rawValue == 0x81FF_F7DE)
        #expect(!decoded.capabilities.contains(.ssl))
        #expect(!decoded.capabilities.contains(.compress))
        #expect(decoded.scramble == (try MySQLHandshake(payload: payload)).scramble)
        #expect(decoded.mariaDBCapabilities == [.progress, .stmtBulkOperations, .extendedMetadata, .cacheMetadata])
    }

    @Test("ZSTD and QUERY_ATTRIBUTES are cleared in the high u16 of a MySQL 8 greeting")
    func rewriteHighHalf() throws {
        // MySQL 8.0-like: caps 0xDFFFFFFF (high half 0xDFFF has bits 26 and 27), caching_sha2_password.
        var greeting = [UInt8(10)] + Wire.cstring("8.0.36") + Wire.uint32(12) + Array("abcdefgh".utf8) + [0]
        greeting += Wire.uint16(0xFFFF) + [255] + Wire.uint16(2) + Wire.uint16(0xDFFF) + [21]
        greeting += [UInt8](repeating: 0, count: 10) + Array("ijklmnopqrst".utf8) + [0]
        greeting += Wire.cstring("caching_sha2_password")
        let rewritten = try MySQLHandshake.rewritingCapabilities(of: buffer(greeting), clearing: .clearedBySluice)
        let decoded = try MySQLHandshake(payload: rewritten)
        #expect(decoded.capabilities.high == 0xDFFF & ~UInt16(0x0C00))
        #expect(decoded.capabilities.low == 0xFFFF & ~UInt16(0x0820))
        #expect(decoded.mariaDBCapabilities == nil)
        #expect(decoded.serverVersion == "8.0.36")
        #expect(!decoded.isMariaDB)
        #expect(decoded.scramble == Array("abcdefghijklmnopqrst".utf8))
        #expect(decoded.authPluginName == "caching_sha2_password")
        let changed = zip(greeting, Array(rewritten.readableBytesView)).enumerated().filter { $0.1.0 != $0.1.1 }
        #expect(changed.map(\.offset) == [21, 22, 27])
    }

    @Test("a greeting with protocol version 9 is refused")
    func protocolNine() {
        var greeting = Self.mariaDBGreeting
        greeting[0] = 9
        #expect(kind { _ = try MySQLHandshake(payload: buffer(greeting)) } == .unsupportedProtocol)
        #expect(
            reason { _ = try MySQLHandshake(payload: buffer(greeting)) }
                == "greeting has protocol version 9; only HandshakeV10 (version 10) is supported")
        #expect(kind { _ = try MySQLHandshake.rewritingCapabilities(of: buffer(greeting), clearing: .ssl) } != nil)
    }

    @Test("an ERR instead of a greeting ('Host is not allowed to connect') decodes without SQLSTATE")
    func errorGreeting() throws {
        let payload = [0xFF] + Wire.uint16(1130) + Array("Host '10.0.0.9' is not allowed to connect".utf8)
        let error = MySQLErrorPacket(code: 1130, sqlState: nil, message: "Host '10.0.0.9' is not allowed to connect")
        #expect(try MySQLHandshake.decodeGreeting(buffer(payload)) == .error(error))
    }

    @Test("truncated greetings are refused at every length, naming the missing field")
    func truncatedGreetings() {
        var reasons: Set<String> = []
        for length in 0..<(Self.mariaDBGreeting.count - 22) {
            let payload = buffer(Array(Self.mariaDBGreeting.prefix(length)))
            do {
                _ = try MySQLHandshake(payload: payload)
                Issue.record("a greeting cut at \(length) bytes was accepted")
            } catch {
                #expect(error.kind == .malformedPacket)
                reasons.insert(error.reason)
            }
        }
        #expect(reasons.contains("greeting: server version has no NUL terminator"))
        #expect(reasons.contains("greeting: scramble part 2 needs 13 bytes but 1 remain"))
        // Without the plugin name's NUL the name runs to the end (MySQL 5.5.7–5.5.9, Bug #59453).
        let noNUL = buffer(Array(Self.mariaDBGreeting.dropLast()))
        #expect((try? MySQLHandshake(payload: noNUL))?.authPluginName == "mysql_native_password")
    }

    // MARK: Client response

    @Test("the mysql client's HandshakeResponse41 decodes, and the auth data is only counted")
    func mysqlClientResponse() throws {
        guard case .response(let response) = try MySQLClientHandshake(payload: buffer(Self.mysqlClientResponse)) else {
            Issue.record("not a response")
            return
        }
        #expect(response.capabilities.rawValue == 0x00BF_A28C)
        #expect(response.capabilities.contains([.protocol41, .secureConnection, .pluginAuth, .connectAttributes]))
        #expect(response.capabilities.contains([.pluginAuthLengthEncodedClientData, .sessionTrack, .multiResults]))
        #expect(!response.capabilities.contains(.deprecateEOF))
        #expect(!response.capabilities.contains(.ssl))
        #expect(response.maxPacketSize == 1 << 20)
        #expect(response.characterSet == 33)
        #expect(response.mariaDBCapabilities == [.progress, .stmtBulkOperations, .extendedMetadata, .cacheMetadata])
        #expect(response.user == "sluice_native")
        #expect(response.authResponseLength == 20)
        #expect(response.database == "sluice")
        #expect(response.authPluginName == "mysql_native_password")
        #expect(response.attributes.first == .init(name: "_os", value: "Linux"))
        #expect(
            response.attributes.map(\.name) == [
                "_os", "_client_name", "_pid", "_client_version", "_platform", "program_name", "_server_host",
            ])
        #expect(response.attributes.last?.value == "127.0.0.1")
        #expect(response.zstdCompressionLevel == nil)
        // A fresh capture of the same client (another scramble, another pid) decodes the same way.
        let captured = try #require(MariaDBCaptures.cliSelect1.clientPayloads.first)
        guard case .response(let again) = try MySQLClientHandshake(payload: captured) else {
            Issue.record("not a response")
            return
        }
        #expect(again.capabilities == response.capabilities)
        #expect(again.user == "sluice_native")
        #expect(again.attributes.map(\.name) == response.attributes.map(\.name))
    }

    @Test("a client with CLIENT_MYSQL set has no MariaDB extended capabilities; a 1-byte auth length is read")
    func classicResponse() throws {
        let payload = try #require(MariaDBCaptures.classic[named: "handshake response"].clientPayloads.first)
        guard case .response(let response) = try MySQLClientHandshake(payload: payload) else {
            Issue.record("not a response")
            return
        }
        #expect(response.capabilities.contains(.clientMySQL))
        #expect(response.mariaDBCapabilities == nil)
        #expect(response.user == "sluice_native")
        #expect(response.attributes == [.init(name: "_client_name", value: "sluice-capture")])

        // Without PLUGIN_AUTH_LENENC_CLIENT_DATA: SECURE_CONNECTION's 1-byte length.
        let caps: MySQLCapabilities = [.protocol41, .secureConnection, .pluginAuth, .connectWithDB]
        let bytes =
            Wire.uint32(caps.rawValue) + Wire.uint32(1 << 24) + [45] + [UInt8](repeating: 0, count: 23)
            + Wire.cstring("app") + [3, 1, 2, 3] + Wire.cstring("shop") + Wire.cstring("client_ed25519")
        guard case .response(let short) = try MySQLClientHandshake(payload: buffer(bytes)) else {
            Issue.record("not a response")
            return
        }
        #expect(short.user == "app")
        #expect(short.authResponseLength == 3)
        #expect(short.database == "shop")
        #expect(short.authPluginName == "client_ed25519")
        #expect(short.mariaDBCapabilities == MariaDBCapabilities(rawValue: 0))
    }

    @Test("a 32-byte response with CLIENT_SSL is an SSLRequest; without it, it is malformed")
    func sslRequest() throws {
        let caps: MySQLCapabilities = [.protocol41, .secureConnection, .pluginAuth, .ssl, .clientMySQL]
        let bytes = Wire.uint32(caps.rawValue) + Wire.uint32(1 << 24) + [45] + [UInt8](repeating: 0, count: 23)
        #expect(bytes.count == 32)
        #expect(
            try MySQLClientHandshake(payload: buffer(bytes))
                == .sslRequest(
                    MySQLSSLRequest(
                        capabilities: caps, maxPacketSize: 1 << 24, characterSet: 45, mariaDBCapabilities: nil)))
        let plain = Wire.uint32(caps.subtracting(.ssl).rawValue) + Array(bytes.dropFirst(4))
        #expect(
            reason { _ = try MySQLClientHandshake(payload: buffer(plain)) }
                == "handshake response: ends after the reserved bytes without CLIENT_SSL, so it is not an SSLRequest")
    }

    @Test("a response without CLIENT_PROTOCOL_41 (HandshakeResponse320) is unsupported")
    func response320() {
        let bytes = Wire.uint32(MySQLCapabilities([.clientMySQL, .secureConnection]).rawValue) + [0, 0, 0, 0]
        #expect(kind { _ = try MySQLClientHandshake(payload: buffer(bytes)) } == .unsupportedProtocol)
    }

    @Test("rewriting the client's capabilities changes the first four bytes only")
    func rewriteResponse() throws {
        var bytes = Self.mysqlClientResponse
        bytes[1] |= 0x08  // The client asks for SSL (0x800) although Sluice did not offer it.
        let rewritten = try MySQLHandshakeResponse.rewritingCapabilities(
            of: buffer(bytes), clearing: .clearedBySluice)
        #expect(Array(rewritten.readableBytesView) == Self.mysqlClientResponse)
    }

    @Test("clearing ZSTD from a MySQL 8 response drops its compression-level byte")
    func rewriteZstd() throws {
        let caps: MySQLCapabilities = [
            .protocol41, .secureConnection, .pluginAuth, .pluginAuthLengthEncodedClientData, .zstdCompressionAlgorithm,
            .queryAttributes, .clientMySQL,
        ]
        let body =
            Wire.uint32(1 << 24) + [255] + [UInt8](repeating: 0, count: 23) + Wire.cstring("u")
            + Wire.lenenc(0) + Wire.cstring("caching_sha2_password")
        let bytes = Wire.uint32(caps.rawValue) + body + [3]
        guard case .response(let response) = try MySQLClientHandshake(payload: buffer(bytes)) else {
            Issue.record("not a response")
            return
        }
        #expect(response.zstdCompressionLevel == 3)
        #expect(response.authResponseLength == 0)
        let rewritten = try MySQLHandshakeResponse.rewritingCapabilities(of: buffer(bytes), clearing: .clearedBySluice)
        let expected = Wire.uint32(caps.subtracting([.zstdCompressionAlgorithm, .queryAttributes]).rawValue) + body
        #expect(Array(rewritten.readableBytesView) == expected)
    }

    @Test("connection attributes whose pairs overrun their declared length are refused")
    func badAttributes() {
        let caps: MySQLCapabilities = [.protocol41, .secureConnection, .connectAttributes, .clientMySQL]
        let head =
            Wire.uint32(caps.rawValue) + Wire.uint32(0) + [45] + [UInt8](repeating: 0, count: 23)
            + Wire.cstring("u") + [0]
        let overrun = head + [4] + Wire.lenencString("abc") + [5]
        #expect(kind { _ = try MySQLClientHandshake(payload: buffer(overrun)) } == .malformedPacket)
        let tooLong = head + [0xFC, 0xFF, 0x00] + [1, 2]
        #expect(
            reason { _ = try MySQLClientHandshake(payload: buffer(tooLong)) }
                == "handshake response: connection attribute byte count 255 needs at least 255 × 1 bytes but 2 remain")
    }
}
