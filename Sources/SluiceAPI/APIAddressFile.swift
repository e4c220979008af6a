import Foundation

/// `<data-dir>/api-address`: where the recorder of a data directory serves its control API (`http://127.0.0.1:PORT`
/// or `unix:PATH`), written when the API starts (0600, like the token beside it) and removed when it stops, so
/// `sluice attach --data-dir DIR` finds a running recorder, port 0 included.
public enum APIAddressFile {
    public static func path(inDirectory directory: String) -> String {
        (directory as NSString).appendingPathComponent("api-address")
    }

    /// Writes `address` in place of any earlier one (a recorder that died without removing it).
    public static func write(_ address: String, inDirectory directory: String) throws(APIError) {
        let path = path(inDirectory: directory)
        let temporary = path + ".\(getpid()).tmp"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw APIError("cannot write \(path): \(String(cString: strerror(errno)).lowercased())") }
        let line = Array((address + "\n").utf8)
        let written = Foundation.write(descriptor, line, line.count)
        close(descriptor)
        guard written == line.count, rename(temporary, path) == 0 else {
            unlink(temporary)
            throw APIError("cannot write \(path): \(String(cString: strerror(errno)).lowercased())")
        }
    }

    /// The address a running recorder wrote; nil when there is none.
    public static func read(inDirectory directory: String) -> String? {
        guard let data = FileManager.default.contents(atPath: path(inDirectory: directory)) else { return nil }
        let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return text.isEmpty ? nil : text
    }

    /// Removes the file if it still names `address` (a newer recorder's stays).
    public static func remove(_ address: String, inDirectory directory: String) {
        guard read(inDirectory: directory) == address else { return }
        unlink(path(inDirectory: directory))
    }
}
