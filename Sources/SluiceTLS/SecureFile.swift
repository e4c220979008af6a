#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The few file operations the CA and the SSH host key need, done with open(2) so permissions are right from the first byte.
///
/// Foundation's `FileManager` writes then chmods, which leaves a private key briefly world-readable; these helpers
/// never do that.
public enum SecureFile {
    /// Largest file we will read: PEM certificates and keys are a few KiB, so anything bigger is not ours.
    static let maxFileSize = 1 << 20

    /// Creates `path` with mode 0700 if it is missing. An existing directory is left as it is (the operator may have
    /// chosen its mode); an existing non-directory is an error.
    public static func ensureDirectory(_ path: String) throws(TLSSetupError) {
        if mkdir(path, 0o700) == 0 { return }
        let err = errno
        guard err == EEXIST else {
            throw TLSSetupError("cannot create directory \(path): \(describe(err))")
        }
        var info = stat()
        guard stat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR else {
            throw TLSSetupError("\(path) exists but is not a directory")
        }
    }

    /// Reads a whole file, or returns nil when it does not exist.
    ///
    /// With `requirePrivate`, the file's mode must be no wider than 0600; the mode is checked on the open descriptor so
    /// a swap between check and read is impossible.
    public static func readFile(_ path: String, requirePrivate: Bool = false) throws(TLSSetupError) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            let err = errno
            if err == ENOENT { return nil }
            throw TLSSetupError("cannot open \(path): \(describe(err))")
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            throw TLSSetupError("cannot stat \(path): \(describe(errno))")
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw TLSSetupError("\(path) is not a regular file")
        }
        let permissions = UInt32(info.st_mode) & 0o777
        if requirePrivate && permissions & ~0o600 != 0 {
            throw TLSSetupError(
                "\(path) has permissions \(octal(permissions)), wider than a private key may have; "
                    + "it must be 0600 (chmod 600 \(path))"
            )
        }
        guard Int(info.st_size) <= maxFileSize else {
            throw TLSSetupError("\(path) is \(info.st_size) bytes, too large to be a PEM certificate or key")
        }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw TLSSetupError("cannot read \(path): \(describe(errno))")
            }
            if count == 0 { break }
            bytes.append(contentsOf: chunk[0..<count])
            guard bytes.count <= maxFileSize else {
                throw TLSSetupError("\(path) is too large to be a PEM certificate or key")
            }
        }
        return bytes
    }

    /// Creates a new file that only its owner can read, failing if anything already exists at `path`.
    ///
    /// O_CREAT|O_EXCL with mode 0600 means the key is never readable by others, not even for an instant, and a
    /// symlink planted at `path` is not followed. Returns false (writing nothing) when the file already exists, so a
    /// racing process's key is never overwritten.
    public static func createPrivate(_ path: String, contents: [UInt8]) throws(TLSSetupError) -> Bool {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o600)
        if fd < 0 {
            let err = errno
            if err == EEXIST { return false }
            throw TLSSetupError("cannot create \(path): \(describe(err))")
        }
        do {
            try writeAll(fd, contents, path: path)
        } catch {
            close(fd)
            unlink(path)  // A half-written key is worse than none: the next run would refuse to parse it.
            throw error
        }
        close(fd)
        return true
    }

    /// Replaces `path` atomically (write a temporary file, fsync, rename), so a reader never sees half a PEM.
    ///
    /// The temporary name is short and starts with '.', so it fits NAME_MAX even when `path`'s own name is near it,
    /// and cannot be a validated host's file name.
    public static func writeAtomically(_ path: String, contents: [UInt8], mode: mode_t) throws(TLSSetupError) {
        let directory = path.lastIndex(of: "/").map { String(path[..<$0]) } ?? "."
        let temporary = "\(directory)/.tmp-\(randomHex(bytes: 8))"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode)
        if fd < 0 {
            throw TLSSetupError("cannot create \(temporary): \(describe(errno))")
        }
        do {
            try writeAll(fd, contents, path: temporary)
        } catch {
            close(fd)
            unlink(temporary)
            throw error
        }
        close(fd)
        if rename(temporary, path) != 0 {
            let err = errno
            unlink(temporary)
            throw TLSSetupError("cannot rename \(temporary) to \(path): \(describe(err))")
        }
    }

    /// The mode bits of `path` (for tests and diagnostics), or nil if it cannot be stat'ed.
    public static func permissions(_ path: String) -> UInt32? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return UInt32(info.st_mode) & 0o777
    }

    static func randomHex(bytes count: Int) -> String {
        var rng = SystemRandomNumberGenerator()
        return (0..<count).map { _ in hex(UInt8.random(in: .min ... .max, using: &rng)) }.joined()
    }

    static func hex(_ byte: UInt8) -> String {
        let digits: [Character] = Array("0123456789abcdef")
        return String([digits[Int(byte >> 4)], digits[Int(byte & 0x0f)]])
    }

    private static func writeAll(_ fd: Int32, _ contents: [UInt8], path: String) throws(TLSSetupError) {
        var offset = 0
        while offset < contents.count {
            let written = contents[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if written < 0 {
                if errno == EINTR { continue }
                throw TLSSetupError("cannot write \(path): \(describe(errno))")
            }
            offset += written
        }
        // Durable before rename/return, so a crash cannot leave an empty file under the final name.
        guard fsync(fd) == 0 else {
            throw TLSSetupError("cannot sync \(path): \(describe(errno))")
        }
    }

    private static func describe(_ err: Int32) -> String {
        String(cString: strerror(err))
    }

    private static func octal(_ mode: UInt32) -> String {
        let digits = String(mode, radix: 8)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }
}
