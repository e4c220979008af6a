import Crypto
import Foundation

/// The control API's bearer token: made on first use into `<data-dir>/api-token` (0600, 32 random bytes as hex) and
/// read from there afterwards, so tools on the same host read it from the file and nothing else can.
public struct APIToken: Sendable {
    public let value: String
    public let path: String

    /// Reads the token at `path`, or makes it there when there is none.
    public static func loadOrCreate(at path: String) throws(APIError) -> APIToken {
        if let data = FileManager.default.contents(atPath: path) {
            let value = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            guard value.count >= 32 else { throw APIError("\(path) holds no token (at least 32 characters); delete it to make a new one") }
            return APIToken(value: value, path: path)
        }
        let value = SymmetricKey(size: .bits256).withUnsafeBytes { bytes in
            bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
        }
        // O_EXCL: two starts at once do not overwrite each other's token; 0600 from the first byte.
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw APIError("cannot create the API token \(path): \(String(cString: strerror(errno)).lowercased())")
        }
        defer { close(descriptor) }
        let line = Array((value + "\n").utf8)
        guard write(descriptor, line, line.count) == line.count else {
            throw APIError("cannot write the API token \(path): \(String(cString: strerror(errno)).lowercased())")
        }
        return APIToken(value: value, path: path)
    }

    /// Whether an `Authorization` header carries this token, compared in constant time.
    public func admits(_ authorization: String?) -> Bool {
        guard let authorization, authorization.hasPrefix("Bearer ") else { return false }
        let given = Array(authorization.dropFirst(7).utf8)
        let expected = Array(value.utf8)
        guard given.count == expected.count else { return false }
        var difference: UInt8 = 0
        for index in expected.indices { difference |= given[index] ^ expected[index] }
        return difference == 0
    }
}
