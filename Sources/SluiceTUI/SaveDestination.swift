import Foundation
import SluiceCore
import SluiceModel
import SluiceStore

/// Where `w` saves flows: `<data-dir>/exports/` unless the operator types an absolute path (or `~/…`). A relative
/// name is taken inside that directory too, not the working directory, which under `scripts/run` is the
/// repository. A saved store holds what was recorded (cookies, tokens), so the directory is made 0700 and the file,
/// as every store, 0600.
struct SaveDestination: Sendable {
    let dataDirectory: DataDirectory

    /// The path the prompt offers: a new file named after the time.
    func suggestedPath(at date: Date) -> String {
        let stamp = Timestamp.iso8601(date).prefix(19).replacingOccurrences(of: ":", with: "")
        return (exports as NSString).appendingPathComponent("sluice-export-\(stamp).sqlite")
    }

    /// The absolute path the operator means by `typed`.
    func resolve(_ typed: String) -> String {
        let expanded = Configuration.expandTilde(typed.trimmingCharacters(in: .whitespaces))
        return Self.absolute(expanded, in: exports)
    }

    /// Makes the exports directory (0700) when `path` is inside it; any other place must exist already.
    func prepare(for path: String) throws(StoreError) {
        if (path as NSString).deletingLastPathComponent == exports {
            try dataDirectory.prepareExports()
        }
    }

    /// `<data-dir>/exports`, absolute even when `--data-dir` was given relative.
    private var exports: String {
        Self.absolute(dataDirectory.exportsPath, in: FileManager.default.currentDirectoryPath)
    }

    private static func absolute(_ path: String, in directory: String) -> String {
        let absolute = path.hasPrefix("/") ? path : (directory as NSString).appendingPathComponent(path)
        return (absolute as NSString).standardizingPath
    }
}
