import Crypto
import Foundation
import GRDB
import SluiceModel

/// HTTP bodies kept once per content: the `bodies` table, found by SHA-256, and what the writer remembers of it.
///
/// Hashing is the expensive part (SHA-256 of a 100 KiB body is ~50 µs, as much as the rest of recording the
/// exchange), so the bodies met most recently are also kept by a cheap fingerprint and recognized by comparing
/// their bytes, which costs a tenth of that and cannot be fooled by a collision. Used by the writer thread only.
final class SharedBodies {
    /// Body messages at least this large are kept once; smaller ones stay inline, where a hash and a lookup would
    /// cost more than they save.
    static let minimumBytes = 4096

    /// Digests of bodies known to be in `bodies`, with their row ids; forgotten wholesale when it grows too big
    /// (a forgotten body costs one lookup by its unique digest).
    private var rowIDs: [Data: Int64] = [:]
    private let rowIDLimit = 50_000

    /// Recently met bodies by fingerprint, with their digest and row id, up to `recentLimitBytes` of content.
    private var recent: [Fingerprint: Known] = [:]
    private var recentOrder: [Fingerprint] = []
    private var recentOrderStart = 0
    private var recentBytes = 0
    private let recentLimitBytes: Int

    struct Known {
        let bytes: Data
        let digest: Data
        let rowID: Int64
    }

    /// Rows a batch added or found; trusted only once its transaction has committed (`committed`).
    struct BatchRows {
        fileprivate var byDigest: [Data: Int64] = [:]
        fileprivate var met: [Known] = []
    }

    init(recentLimitBytes: Int = 32 << 20) {
        self.recentLimitBytes = recentLimitBytes
    }

    /// The SHA-256 of the message's body when it is kept once; nil for every other message.
    func digest(of message: Message) -> Data? {
        guard message.kind == .body, message.payload.count >= Self.minimumBytes else { return nil }
        let payload = message.payload
        if let known = recent[Fingerprint(payload)], known.bytes == payload { return known.digest }
        return Data(SHA256.hash(data: payload))
    }

    /// The `bodies` row holding `payload`, added when the store does not have it yet.
    func rowID(for payload: Data, digest: Data, in db: Database, batch: inout BatchRows) throws -> Int64 {
        if let id = rowIDs[digest] ?? batch.byDigest[digest] {
            batch.met.append(Known(bytes: payload, digest: digest, rowID: id))
            return id
        }
        let id: Int64
        if let existing = try Int64.fetchOne(db, sql: "SELECT id FROM bodies WHERE sha256 = ?", arguments: [digest]) {
            id = existing
        } else {
            try db.cachedStatement(sql: "INSERT INTO bodies (sha256, data) VALUES (?, ?)").execute(arguments: [digest, payload])
            id = db.lastInsertedRowID
        }
        batch.byDigest[digest] = id
        batch.met.append(Known(bytes: payload, digest: digest, rowID: id))
        return id
    }

    /// Remembers what a committed batch added or met.
    func committed(_ batch: BatchRows) {
        if rowIDs.count + batch.byDigest.count > rowIDLimit { rowIDs.removeAll(keepingCapacity: true) }
        rowIDs.merge(batch.byDigest) { old, _ in old }
        for known in batch.met {
            let fingerprint = Fingerprint(known.bytes)
            if let old = recent.updateValue(known, forKey: fingerprint) {
                recentBytes -= old.bytes.count
            } else {
                recentOrder.append(fingerprint)
            }
            recentBytes += known.bytes.count
        }
        // Oldest first; a fingerprint seen again keeps its place, which is fine for a cache this coarse.
        while recentBytes > recentLimitBytes, recentOrderStart < recentOrder.count {
            let oldest = recentOrder[recentOrderStart]
            recentOrderStart += 1
            if let removed = recent.removeValue(forKey: oldest) { recentBytes -= removed.bytes.count }
        }
        if recentOrderStart > 1024 && recentOrderStart * 2 > recentOrder.count {
            recentOrder.removeFirst(recentOrderStart)
            recentOrderStart = 0
        }
    }
}

/// A body's size and its first and last 32 bytes: equal for equal bodies, and rarely equal otherwise.
private struct Fingerprint: Hashable {
    let size: Int
    let head: Data
    let tail: Data

    init(_ bytes: Data) {
        size = bytes.count
        head = bytes.prefix(32)
        tail = bytes.suffix(32)
    }
}
