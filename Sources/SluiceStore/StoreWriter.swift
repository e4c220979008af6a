import Foundation
#if canImport(Glibc)
import Glibc
#endif
import GRDB
import Logging
import SluiceModel

/// How far a store's writer has got, for a reader that learns of events another way (the TUI's live feed) and
/// reads them back from the store: every event the writer had received when `eventsReceived` was read is in the
/// store once `eventsWritten` reaches that number.
public protocol StoreWriteProgress: AnyObject, Sendable {
    var eventsReceived: Int { get }
    var eventsWritten: Int { get }
    /// Why the store cannot write right now (a full disk), or nil while it can.
    var failure: String? { get }
}

/// Keeps the operator's marks (`m` in the TUI) in the store, through its one writer.
public protocol FlowMarking: AnyObject, Sendable {
    func setMarked(_ marked: Bool, flow: FlowID)
}

/// The one writer of a store: takes events from any thread, commits them to SQLite and the JSON Lines logs in
/// batches (about every 50 ms or 1,000 events) on its own thread.
///
/// It never drops an event. When its backlog passes `highWaterBytes`, `isBackedUp` turns true and the engine stops
/// reading from the network until `whenDrained` fires below `lowWaterBytes`. The two are close (1 MiB apart by
/// default), so a stop lasts as long as writing 1 MiB of events takes, tens of milliseconds, instead of emptying a
/// deep backlog while every client waits.
///
/// When the disk fails (full, removed), the batch is retried every half second until it is written, and the error
/// is said once, and again when writing resumes (with an alert row saying how long recording stopped). A batch
/// is committed to SQLite all or nothing, then its JSON lines are written; a retry redoes neither part that
/// succeeded, so no row or line is written twice. Meanwhile, by `StoreFullPolicy`: `stop` holds the engine back
/// (the backlog fills, `isBackedUp`) and `refusal` asks it to refuse new connections; `relay` lets it go on and
/// drops the events that arrive until writing resumes, and with them every later event of a flow whose opening
/// was dropped (the store would have no row to add them to).
///
/// The thread runs at nice 10 while it keeps up, so relaying wins the CPU; once a quarter of `highWaterBytes` is
/// queued it runs at normal priority, so it is not starved by the very event loops that wait for it. A nice value
/// alone does not stop a commit of several milliseconds from delaying a thread woken onto the same core, so while it
/// keeps up the writer also yields its core every 100 µs of a batch (`CPUYield`). Where the
/// process may not raise a thread's priority again (not root, `RLIMIT_NICE` below 20) it stays at normal priority.
///
/// It also keeps the operator's marks (`FlowMarking`): a mark is written after every event received before it, so
/// the flow's row is there, in a transaction of its own. The control API's sessions and acknowledgements go the
/// same way (`perform`), and their callers wait for the answer.
public final class StoreWriter: StoreWriteProgress, FlowMarking, @unchecked Sendable {
    // @unchecked: every mutable field below is guarded by `condition`, except the database, the log, `statements`
    // and `courtesy`, which only the writer thread touches.
    private let condition = NSCondition()
    /// Events not yet taken by the writer thread, which takes them all at once (swapping in the emptied array of its
    /// previous take), so the event loops never wait on the lock while a batch is copied, nor grow the array again.
    /// A take's events are freed once all of it is written, so memory stays below about twice `highWaterBytes`.
    private var queue: [ProxyEvent] = []
    /// What `queue` and the events taken but not yet written weigh (see `cost(of:)`).
    private var queuedBytes = 0
    private var received = 0
    /// Events whose batch has been committed (or given up on at shutdown).
    private var written = 0
    private var closing = false
    private var finished = false
    private var drainedCallbacks: [@Sendable () -> Void] = []
    /// Marks not yet written, the latest per flow; taken with the queue.
    private var pendingMarks: [FlowID: Bool] = [:]
    /// Work callers wait for (`perform`), in the order it came; taken with the queue.
    private var pendingWork: [@Sendable (DatabaseQueue) -> Void] = []
    /// Why writing fails, since when, and (with `.relay`) what was dropped meanwhile.
    private var failing: String?
    private var failingSince: Date?
    private var discarding = false
    private var discarded = 0
    private var flowsNotRecorded: Set<FlowID> = []
    private let onFull: StoreFullPolicy

    private let database: DatabaseQueue
    private let databasePath: String
    private let log: JSONLinesLog
    private let sharedBodies = SharedBodies()
    private var statements: StoreRows?
    /// Gives the writer thread's core away during a long batch while the writer keeps up (writer thread only).
    private var courtesy = CPUYield()
    /// Held for the writer's life: two writers on one store would hand out the same flow ids.
    private var lockDescriptor: Int32
    private let logger: Logger
    private var thread: Thread?

    public let batchInterval: TimeInterval
    public let batchSize: Int
    public let highWaterBytes: Int
    public let lowWaterBytes: Int
    /// A batch this large is written without waiting for `batchInterval`.
    private var batchBytes: Int { highWaterBytes / 16 }

    /// Opens (or creates) the store in `directory` for writing and starts the writer thread.
    public init(
        directory: DataDirectory, logger: Logger, batchInterval: TimeInterval = 0.05, batchSize: Int = 1000,
        highWaterBytes: Int = 16 << 20, lowWaterBytes: Int = 15 << 20, onFull: StoreFullPolicy = .stop
    ) throws(StoreError) {
        self.onFull = onFull
        try directory.prepareForWriting()
        // Before the database is touched: a second writer would also mark the first one's open flows interrupted.
        let lockDescriptor = try Self.lock(directory)
        self.lockDescriptor = lockDescriptor
        do {
            self.database = try Store.open(path: directory.databasePath, readOnly: false)
        } catch {
            Glibc.close(lockDescriptor)
            throw error
        }
        self.databasePath = directory.databasePath
        self.log = JSONLinesLog(directory: directory.logsPath)
        self.logger = logger
        self.batchInterval = batchInterval
        self.batchSize = batchSize
        self.highWaterBytes = highWaterBytes
        self.lowWaterBytes = lowWaterBytes
        do {
            // A flow left open by a process that died without closing it will never close now. Its totals were
            // to be written at its close: what its recorded messages carried is the best account left.
            try database.write { db in
                try db.execute(
                    sql: """
                        UPDATE flows SET state = 'interrupted',
                            bytes_up = MAX(bytes_up, (SELECT COALESCE(SUM(size), 0) FROM messages
                                                      WHERE flow_id = flows.id AND direction = 'up')),
                            bytes_down = MAX(bytes_down, (SELECT COALESCE(SUM(size), 0) FROM messages
                                                          WHERE flow_id = flows.id AND direction = 'down'))
                        WHERE state = 'open'
                        """
                )
                // Its proxies went with the process that opened them.
                try db.execute(sql: "UPDATE sessions SET state = 'interrupted' WHERE state = 'open'")
            }
        } catch {
            Glibc.close(lockDescriptor)
            throw StoreError("cannot update \(directory.databasePath): \(Store.describe(error))")
        }
        let thread = Thread { [self] in self.run() }
        thread.name = "sluice-store-writer"
        self.thread = thread
        thread.start()
    }

    /// Takes `<data-dir>/sluice.lock` (an advisory `flock`, released by the kernel even when the process dies).
    private static func lock(_ directory: DataDirectory) throws(StoreError) -> Int32 {
        let path = (directory.path as NSString).appendingPathComponent("sluice.lock")
        let fd = Glibc.open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw StoreError("cannot open \(path): \(String(cString: strerror(errno)).lowercased())")
        }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let code = errno
            let holder = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
            Glibc.close(fd)
            if code == EWOULDBLOCK {
                let who = holder.flatMap { Int32($0) }.map { "sluice (pid \($0))" } ?? "sluice"
                throw StoreError(
                    "another \(who) is recording into \(directory.path): stop it first (a sluice with a terminal UI can replay with r)"
                )
            }
            throw StoreError("cannot lock \(path): \(String(cString: strerror(code)).lowercased())")
        }
        // The holder's pid, for the message another process gets.
        let pid = Array("\(getpid())\n".utf8)
        if ftruncate(fd, 0) == 0 { _ = pid.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) } }
        return fd
    }

    /// The id the next flow should get: one past the highest in the store.
    public func nextFlowID() throws(StoreError) -> FlowID {
        do {
            let highest = try database.read { db in try Int64.fetchOne(db, sql: "SELECT MAX(id) FROM flows") }
            return FlowID((highest ?? 0) + 1)
        } catch {
            throw StoreError("cannot read the store: \(Store.describe(error))")
        }
    }

    // MARK: Producer side (any thread)

    public func receive(_ event: ProxyEvent) {
        condition.lock()
        if discarding || !flowsNotRecorded.isEmpty, !keep(event) {
            condition.unlock()
            return
        }
        queue.append(event)
        received += 1
        let before = queuedBytes
        queuedBytes += Self.cost(of: event)
        // Wake the writer to start a batch's clock, and again when the batch is full.
        if queue.count == 1 || queue.count == batchSize || (before < batchBytes && queuedBytes >= batchBytes) {
            condition.signal()
        }
        condition.unlock()
    }

    /// With `.relay`, while writing fails: drops the event, and remembers a flow whose opening it dropped so that
    /// none of that flow's events is written later. Called under the lock.
    private func keep(_ event: ProxyEvent) -> Bool {
        let flow = event.flowID
        if discarding {
            discarded += 1
            if case .flowOpened(let opened) = event { flowsNotRecorded.insert(opened.flowID) }
            if case .flowClosed(let closed) = event { flowsNotRecorded.remove(closed.flowID) }
            return false
        }
        guard let flow, flowsNotRecorded.contains(flow) else { return true }
        discarded += 1
        if case .flowClosed = event { flowsNotRecorded.remove(flow) }
        return false
    }

    /// Runs `work` on the writer thread, in a transaction of its own, after every event received before this call
    /// (so the rows it reads or updates are there), and returns its answer.
    /// - Throws: what `work` threw; or, when the writer is closing or gives no answer within `timeout` (writing is
    ///   far behind, or the disk refuses it), a `StoreError` saying so. The work may still run after a timeout.
    func perform<T: Sendable>(timeout: TimeInterval = 10, _ work: @escaping @Sendable (Database) throws -> T) throws(StoreError) -> T {
        let answer = WorkAnswer<T>()
        condition.lock()
        guard !closing else {
            condition.unlock()
            throw StoreError("the store is closing")
        }
        pendingWork.append { database in
            do {
                answer.set(.success(try database.write(work)))
            } catch let error as StoreError {
                answer.set(.failure(error))
            } catch {
                answer.set(.failure(StoreError("cannot write the store: \(Store.describe(error))")))
            }
        }
        condition.signal()
        condition.unlock()
        guard let result = answer.wait(timeout: timeout) else {
            throw StoreError("the store did not answer within \(Int(timeout)) s: \(failure ?? "its writer is far behind")")
        }
        return try result.get()
    }

    public func setMarked(_ marked: Bool, flow: FlowID) {
        condition.lock()
        pendingMarks[flow] = marked
        condition.signal()
        condition.unlock()
    }

    public var failure: String? {
        condition.lock()
        defer { condition.unlock() }
        return failing
    }

    /// With `.stop`, while writing fails: why new connections are refused.
    public var refusal: String? {
        guard onFull == .stop else { return nil }
        return failure.map { "the store cannot write (\($0)); new connections are refused until it can" }
    }

    public var eventsReceived: Int {
        condition.lock()
        defer { condition.unlock() }
        return received
    }

    public var eventsWritten: Int {
        condition.lock()
        defer { condition.unlock() }
        return written
    }

    public var isBackedUp: Bool {
        condition.lock()
        defer { condition.unlock() }
        return queuedBytes > highWaterBytes && !discarding
    }

    public func whenDrained(_ callback: @escaping @Sendable () -> Void) {
        condition.lock()
        if queuedBytes <= lowWaterBytes {
            condition.unlock()
            callback()
            return
        }
        drainedCallbacks.append(callback)
        condition.unlock()
    }

    /// Writes everything queued, stops the thread and closes the files. Returns when the data is on disk.
    public func close() {
        condition.lock()
        closing = true
        condition.signal()
        while !finished { condition.wait() }
        condition.unlock()
        log.close()
        // Fold the WAL back into the main file so a copied .sqlite is complete on its own.
        _ = try? database.writeWithoutTransaction { db in try db.checkpoint(.truncate) }
        condition.lock()
        let descriptor = lockDescriptor
        lockDescriptor = -1
        condition.unlock()
        if descriptor >= 0 { Glibc.close(descriptor) }
    }

    // MARK: Writer thread

    private func run() {
        let mayYield = Self.mayRaisePriorityAgain
        var niceness: Int32 = 0
        var taken: [ProxyEvent] = []
        while true {
            condition.lock()
            while queue.isEmpty && pendingMarks.isEmpty && pendingWork.isEmpty && !closing {
                condition.wait()
            }
            // Let a batch build up for `batchInterval` unless it is full already (in events, or in bytes: large
            // bodies reach the high-water mark long before `batchSize` events), someone waits for work, or we are
            // closing.
            let deadline = Date().addingTimeInterval(batchInterval)
            while queue.count < batchSize && queuedBytes < batchBytes && pendingWork.isEmpty && !closing && Date() < deadline {
                _ = condition.wait(until: deadline)
            }
            swap(&taken, &queue)
            let marks = pendingMarks
            pendingMarks = [:]
            let work = pendingWork
            pendingWork = []
            let stopping = closing
            let behind = queuedBytes > highWaterBytes / 4
            // What was taken and has not yet been written is all of the backlog: more than one large batch of it
            // means the writer is falling behind, and it keeps its core until it has caught up.
            courtesy.isOn = queuedBytes <= batchBytes
            condition.unlock()

            let wanted: Int32 = mayYield && !behind ? 10 : 0
            if niceness != wanted {
                // On Linux the nice value is per thread, and `who == 0` names the calling thread.
                if setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, wanted) == 0 { niceness = wanted }
            }

            // One transaction per `batchSize` events or `batchBytes`, whichever comes first, so a large backlog
            // commits (and lets the engine read again) in steps.
            var start = 0
            while start < taken.count {
                var end = start
                var bytes = 0
                // A remainder of less than a quarter batch joins this one rather than paying for a commit of its
                // own: the writer is woken when `batchSize` events are queued, and a few more come in meanwhile.
                while end < taken.count && (end - start < batchSize || taken.count - end < batchSize / 4) && bytes < batchBytes {
                    bytes += Self.cost(of: taken[end])
                    end += 1
                }
                // A slice, not a copy: copying events retains everything each holds, and frees it all twice.
                writeUntilDone(taken[start..<end], weighing: bytes, stopping: stopping)
                start = end
            }
            // The storage goes back to the queue at the next take; a backlog's (much larger) is let go.
            taken.removeAll(keepingCapacity: taken.count <= 4 * batchSize)
            if !marks.isEmpty && !writeMarks(marks) {
                if stopping {
                    logger.error("store: \(marks.count) marks could not be written at shutdown: \(failing ?? "the disk refused them")")
                } else {
                    // Tried again at the next turn, half a second later as a batch is; a newer mark of a flow wins.
                    condition.lock()
                    pendingMarks.merge(marks) { newer, _ in newer }
                    condition.unlock()
                    Thread.sleep(forTimeInterval: 0.5)
                }
            }
            for item in work { item(database) }
            if stopping {
                condition.lock()
                if queue.isEmpty && pendingMarks.isEmpty && pendingWork.isEmpty {
                    if lostAtShutdown > 0 {
                        logger.error("store: \(lostAtShutdown) events could not be written at shutdown: \(failing ?? "the disk refused them")")
                    }
                    finished = true
                    condition.broadcast()
                    condition.unlock()
                    return
                }
                condition.unlock()
            }
        }
    }

    /// Writes a batch, retrying while the disk refuses (every half second; the events stay in memory). Once asked
    /// to stop, a batch that fails is given up at once, and the count of what was lost is said at the end.
    private func writeUntilDone(_ batch: ArraySlice<ProxyEvent>, weighing bytes: Int, stopping: Bool) {
        var stopping = stopping
        var progress = BatchProgress(batch, sharedBodies: sharedBodies)
        while !write(batch, &progress) {
            if !stopping {
                condition.lock()
                stopping = closing
                condition.unlock()
            }
            if stopping {
                lostAtShutdown += batch.count
                break
            }
            Thread.sleep(forTimeInterval: 0.5)
        }
        completed(batch.count, weighing: bytes)
    }

    /// Writes marks in one transaction; false when the disk refuses (said once, as a batch's failure is).
    private func writeMarks(_ marks: [FlowID: Bool]) -> Bool {
        do {
            try database.write { db in
                for (flow, marked) in marks {
                    try db.execute(sql: "UPDATE flows SET marked = ? WHERE id = ?", arguments: [marked, flow.rawValue])
                }
            }
            if failing != nil { writingResumed() }
            return true
        } catch {
            writingFailed("cannot write \(databasePath): \(Store.describe(error))", events: 0)
            return false
        }
    }

    /// Events given up at shutdown because the disk still refused them.
    private var lostAtShutdown = 0

    /// Whether this thread may go back to nice 0 after raising its nice value: root, or `RLIMIT_NICE` of 20 or more.
    private static var mayRaisePriorityAgain: Bool {
        if geteuid() == 0 { return true }
        var limit = rlimit()
        guard getrlimit(__rlimit_resource_t(__RLIMIT_NICE.rawValue), &limit) == 0 else { return false }
        return limit.rlim_cur >= 20  // RLIM_INFINITY included
    }

    /// Accounts for a written batch of `count` events and `bytes` (see `cost(of:)`) and wakes producers waiting for
    /// room.
    private func completed(_ count: Int, weighing bytes: Int) {
        condition.lock()
        written += count
        queuedBytes = max(0, queuedBytes - bytes)
        var callbacks: [@Sendable () -> Void] = []
        if closing {
            // The engine has stopped: nobody is waiting to read again, and its event loops are gone.
            drainedCallbacks = []
        } else if queuedBytes <= lowWaterBytes {
            callbacks = drainedCallbacks
            drainedCallbacks = []
        }
        condition.unlock()
        for callback in callbacks { callback() }
    }

    /// How far a batch has got: its digests and headers (made once), whether SQLite has it, whether its JSON
    /// lines are queued in the log. A retry after a failure redoes only what is not done.
    private struct BatchProgress {
        /// Indexed as the batch is (a slice's indices start where it does in the events taken).
        private var digests: [Data?]
        private var headers: [[UInt8]?]
        private let first: Int
        var committed = false
        var logged = false

        init(_ batch: ArraySlice<ProxyEvent>, sharedBodies: SharedBodies) {
            first = batch.startIndex
            // By index, not `map`: an iterator hands out copies, and copying an event retains everything it holds.
            digests = [Data?](repeating: nil, count: batch.count)
            headers = [[UInt8]?](repeating: nil, count: batch.count)
            for index in batch.indices {
                switch batch[index] {
                case .message(let message): digests[index - first] = sharedBodies.digest(of: message)
                case .httpRequest(let request): headers[index - first] = JSONObject.headersJSON(request.headers)
                case .httpResponse(let response): headers[index - first] = JSONObject.headersJSON(response.headers)
                default: break
                }
            }
        }

        /// The digest of the shared body of the message at `index` in the batch, if it has one.
        func digest(_ index: Int) -> Data? { digests[index - first] }

        /// The JSON of the headers of the request or response at `index` in the batch.
        func headers(_ index: Int) -> [UInt8]? { headers[index - first] }
    }

    /// One transaction per batch, then its JSON lines. Returns false (and says so once) when the disk refuses.
    private func write(_ batch: ArraySlice<ProxyEvent>, _ progress: inout BatchProgress) -> Bool {
        do {
            if !progress.committed {
                try commit(batch, progress)
                progress.committed = true
            }
            if !progress.logged {
                for index in batch.indices {
                    courtesy.tick()
                    log.append(batch[index], bodyDigest: progress.digest(index), headers: progress.headers(index))
                }
                progress.logged = true
            }
            try log.flush()
            if failing != nil { writingResumed() }
            return true
        } catch {
            let message = (error as? StoreError)?.message ?? "cannot write \(databasePath): \(Store.describe(error))"
            writingFailed(message, events: batch.count)
            return false
        }
    }

    private func writingFailed(_ message: String, events: Int) {
        condition.lock()
        let first = failing == nil
        let changed = failing != message
        failing = message
        if first { failingSince = Date() }
        if onFull == .relay && !discarding {
            discarding = true
            // Producers parked on the backlog go on now: from here events are dropped, not queued.
            let callbacks = drainedCallbacks
            drainedCallbacks = []
            condition.unlock()
            for callback in callbacks { callback() }
        } else {
            condition.unlock()
        }
        guard changed else { return }
        switch onFull {
        case .stop:
            logger.error("store: \(message); recording stopped: \(events) events held in memory, new connections refused, retrying")
        case .relay:
            logger.error("store: \(message); relaying without recording (store.on_full: relay), retrying")
        }
    }

    /// The disk takes writes again: said in the log and, as an alert row, in the store itself.
    private func writingResumed() {
        condition.lock()
        let reason = failing ?? ""
        let seconds = failingSince.map { Date().timeIntervalSince($0) } ?? 0
        let dropped = discarded
        failing = nil
        failingSince = nil
        discarding = false
        discarded = 0
        condition.unlock()
        let lost = onFull == .relay ? "\(dropped) events were not recorded (store.on_full: relay)" : "new connections were refused"
        let message = "recording stopped for \(Formatting.duration(seconds: seconds)) (\(reason)): \(lost)"
        logger.notice("store: writing again; \(message)")
        _ = try? database.write { db in
            try db.execute(
                sql: "INSERT INTO alerts (flow_id, at, level, rule, message) VALUES (NULL, ?, 'high', 'store.on_full', ?)",
                arguments: [Date().timeIntervalSince1970, message]
            )
        }
    }

    /// The batch's rows, in one transaction.
    private func commit(_ batch: ArraySlice<ProxyEvent>, _ progress: BatchProgress) throws {
        let folded = FoldedBatch(batch)
        var bodyRows = SharedBodies.BatchRows()
        do {
            try database.write { db in
                let rows = try self.rows(db)
                for write in folded.writes {
                    courtesy.tick()
                    switch write {
                    case .flow(let opened, let closed):
                        guard case .flowOpened(let open) = batch[opened] else { continue }
                        var close: FlowClosed?
                        if let closed, case .flowClosed(let event) = batch[closed] { close = event }
                        try rows.insertFlow(open, closed: close, in: db)
                    case .exchange(let requested, let responded):
                        guard case .httpRequest(let request) = batch[requested] else { continue }
                        var response: (HTTPResponseStarted, headers: [UInt8])?
                        if let responded, case .httpResponse(let event) = batch[responded] {
                            response = (event, progress.headers(responded) ?? [])
                        }
                        try rows.insertExchange(request, headers: progress.headers(requested) ?? [], response: response, in: db)
                    case .command(let index, let finished):
                        guard case .command(let command) = batch[index] else { continue }
                        var outcome: CommandFinished?
                        if let finished, case .commandFinished(let event) = batch[finished] { outcome = event }
                        try rows.insertCommand(command, finished: outcome, in: db)
                    case .event(let index):
                        var bodyID: Int64?
                        if let digest = progress.digest(index), case .message(let message) = batch[index] {
                            bodyID = try sharedBodies.rowID(for: message.payload, digest: digest, in: db, batch: &bodyRows)
                        }
                        try rows.write(batch[index], bodyID: bodyID, headers: progress.headers(index), in: db)
                    }
                }
            }
            // Only now are the new rows in `bodies` for certain.
            sharedBodies.committed(bodyRows)
        }
    }

    /// The answer to one `perform`, handed from the writer thread to the caller waiting for it.
    private final class WorkAnswer<T: Sendable>: @unchecked Sendable {
        // @unchecked: `result` is only touched under `lock`.
        private let lock = NSLock()
        private let ready = DispatchSemaphore(value: 0)
        private var result: Result<T, StoreError>?

        func set(_ result: Result<T, StoreError>) {
            lock.withLock { self.result = result }
            ready.signal()
        }

        func wait(timeout: TimeInterval) -> Result<T, StoreError>? {
            guard ready.wait(timeout: .now() + timeout) == .success else { return nil }
            return lock.withLock { result }
        }
    }

    /// The writer's prepared statements, made on first use (the writer thread's connection lives as long as it).
    private func rows(_ db: Database) throws -> StoreRows {
        if let statements { return statements }
        let made = try StoreRows(db)
        statements = made
        return made
    }

    /// What an event weighs in the backlog: its payload plus a fixed overhead.
    private static func cost(of event: ProxyEvent) -> Int {
        if case .message(let message) = event { return message.payload.count + 128 }
        return 256
    }
}
