import ArgumentParser
import Dispatch
import Foundation
import Logging
import SluiceCore
import SluiceHTTP
import SluiceModel
import SluiceMySQL
import SluicePostgres
import SluiceStore
import SluiceTLS

/// `sluice replay SELECTION`: sends recorded HTTP requests and database sessions again and records each replay as a
/// new flow.
struct ReplayCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Send recorded HTTP requests and database sessions again; each replay is recorded as a new flow.",
        discussion: """
            SELECTION is a flow id (42), a range (10-20, inclusive) or a list mixing both (3,7-9). \
            HTTP flows are sent again as requests. PostgreSQL and MySQL flows are sent again as \
            sessions: a login as the recorded user, then the recorded statements in order (those \
            the policy blocked left out), through the same inspector and policy as the original, \
            so each statement is judged and recorded again. Sluice never records passwords: give \
            one with --password-file, or PGPASSWORD / MYSQL_PWD as the databases' own clients take. \
            The store must not be in use by a running sluice (stop it first, or replay from its \
            terminal UI with r). Servers are verified as the recorder verified them: its \
            --upstream-ca is used unless another is given.

            Examples:
              sluice replay 42
              sluice replay 10-20 --target http://127.0.0.1:8081 --concurrency 4
              PGPASSWORD=... sluice replay 7 --target 127.0.0.1:5433
            """
    )

    @OptionGroup var store: StoreOptions

    @Argument(help: "Flows to replay: ID, FROM-TO or ID,ID,… (mixable: 3,7-9).")
    var selection: String

    @Option(
        name: .long,
        help: """
            Send to this server instead: http://HOST:PORT or https://HOST:PORT for HTTP flows (path and query are \
            kept), HOST:PORT for database sessions.
            """
    )
    var target: String?

    @Option(name: .long, help: "Log database sessions in as this user instead of the recorded one.")
    var user: String?

    @Option(name: .long, help: "Connect database sessions to this database instead of the recorded one.")
    var database: String?

    @Option(name: .customLong("password-file"), help: "The database password: the first line of this file.")
    var passwordFile: String?

    @Option(name: .long, help: "Milliseconds between the starts of two replays.")
    var delay = 0

    @Option(name: .long, help: "Replays in flight at once.")
    var concurrency = 1

    @Option(name: .long, help: "Seconds the server may stay silent before a replay fails.")
    var timeout: Double = 60

    @Flag(name: .customLong("insecure-upstream"), help: "Do not verify servers' certificates (test servers only).")
    var insecureUpstream = false

    @Option(name: .customLong("upstream-ca"), help: "PEM file of extra roots to trust for servers' certificates.")
    var upstreamCA: String?

    func validate() throws {
        do {
            _ = try ReplaySelection(parsing: selection)
            if let target, DatabaseTarget.parse(target) == nil { _ = try URLOverride(parsing: target) }
        } catch let error as ReplaySelectionError {
            throw fail(error)
        } catch {
            throw fail("--target: \(error)")
        }
        guard delay >= 0, Double(delay) / 1000 <= Configuration.maxSeconds else {
            throw fail("--delay must be 0 to 2592000000 milliseconds (30 days)")
        }
        guard concurrency >= 1 else { throw fail("--concurrency must be at least 1") }
        if let problem = Configuration.secondsProblem(timeout) { throw fail("--timeout: \(problem)") }
    }

    func run() throws {
        // Recordings hold secrets: everything Sluice creates is private to its user.
        umask(0o077)
        let ids: [FlowID]
        let override: URLOverride?
        var configuration: Configuration
        do {
            ids = try ReplaySelection(parsing: selection).ids
            override = try target.flatMap { text throws(RequestTargetError) in
                DatabaseTarget.parse(text) == nil ? try URLOverride(parsing: text) : nil
            }
            configuration = try store.loadConfiguration()
        } catch {
            throw fail(error)
        }
        if let dataDir = store.dataDir { configuration.dataDirectory = Configuration.expandTilde(dataDir) }
        if insecureUpstream { configuration.insecureUpstream = true }
        if let upstreamCA { configuration.upstreamCA = Configuration.expandTilde(upstreamCA) }
        configuration.listeners = []
        let directory = DataDirectory(path: configuration.dataDirectory)
        if let recorder = RecorderSettings.load(from: directory) {
            // The recorder may have had its TLS settings as flags, which no config file here holds.
            if configuration.upstreamCA == nil, let ca = recorder.upstreamCA {
                configuration.upstreamCA = ca
                FileHandle.standardError.write(Data("sluice: trusting \(ca) for servers, as the recorder did (--upstream-ca)\n".utf8))
            }
            if recorder.insecureUpstream && !configuration.insecureUpstream {
                // Not taken over: skipping verification is a choice to make for each run.
                FileHandle.standardError.write(
                    Data("sluice: the recorder did not verify servers (--insecure-upstream); pass it to replay against the same test servers\n".utf8)
                )
            }
        }
        Session.bootstrapLogging(level: configuration.logLevel, frontEnd: .headless(quiet: true), directory: directory)

        // The reader first, so that a wrong --data-dir creates nothing; then the writer, whose lock says whether a
        // running sluice owns this store.
        let reader: Store
        let writer: StoreWriter
        let firstFlowID: FlowID
        do {
            reader = try Store(directory: directory)
            writer = try StoreWriter(directory: directory, logger: Logger(label: "sluice.store"))
            do {
                firstFlowID = try writer.nextFlowID()
            } catch {
                writer.close()
                throw error
            }
        } catch {
            throw fail(error)
        }
        let plan: ReplayPlan
        do {
            plan = try ReplayPlan(ids: ids, store: reader, override: override)
        } catch {
            writer.close()
            throw fail(error)
        }
        var sessions: [DatabaseSessionReplay] = []
        do {
            sessions = try databaseSessions(plan.databaseFlows, store: reader)
        } catch {
            writer.close()
            throw fail(error)
        }
        for note in plan.notes {
            FileHandle.standardError.write(Data("sluice: \(note)\n".utf8))
        }
        guard !plan.flows.isEmpty || !plan.databaseFlows.isEmpty else {
            writer.close()
            throw fail("nothing to replay: no HTTP flow or database session in \(selection)")
        }
        if target != nil && override == nil && !plan.flows.isEmpty {
            writer.close()
            throw fail("--target \(target ?? ""): HTTP flows need an http:// or https:// URL")
        }
        var tls: TLSInterception?
        if plan.needsTLS || sessions.contains(where: { $0.spec.options["tls"] == "intercept" }) {
            do {
                tls = try TLSInterception.load(configuration)
            } catch {
                writer.close()
                throw fail(error)
            }
        }
        let engine = Engine(
            configuration: configuration, bus: FlowBus(subscribers: [writer]), firstFlowID: firstFlowID,
            modules: [PostgresModule(tls: tls), MySQLModule(tls: tls)], logger: Logger(label: "sluice.engine")
        )
        var failed = false
        if !plan.flows.isEmpty {
            let replayer = HTTPReplayer(engine: engine, configuration: configuration, tls: tls, responseTimeout: timeout)
            let (results, notStarted) = ReplayRunner(
                replayer: replayer, store: reader, override: override, concurrency: concurrency, delayMilliseconds: delay
            ).run(plan.flows) { result in
                print(ReplayReport.line(result))
                fflush(nil)  // one line per replay as it ends, also into a pipe
            }
            print(ReplayReport.summary(results))
            if notStarted > 0 {
                engine.shutdown()
                writer.close()
                throw fail("interrupted: \(notStarted) of \(plan.flows.count) replays were not started")
            }
            failed = !results.allSatisfy(\.gotResponse)
        }
        // Database sessions one after another: each is a login and its statements in order.
        let databases = DatabaseReplayer(engine: engine, responseTimeout: timeout)
        for session in sessions {
            let replayed = databases.replay(
                session.original, on: session.spec, login: session.login, statements: session.statements,
                holdTimeout: configuration.holdTimeout
            )
            // The replayer reports every failure in its result; its future itself never fails.
            let result = (try? replayed.wait()) ?? DatabaseReplayResult(original: session.original, failure: "the replay was lost")
            DatabaseReplayReport.lines(result, replay: session).forEach { print($0) }
            fflush(nil)
            if result.failure != nil { failed = true }
        }
        engine.shutdown()
        writer.close()
        if failed { throw ExitCode(1) }
    }

    /// The selected database flows as sessions to replay, with `--target`, `--user`, `--database` and the password.
    private func databaseSessions(_ ids: [FlowID], store: Store) throws -> [DatabaseSessionReplay] {
        guard !ids.isEmpty else { return [] }
        var destination: Endpoint?
        if let target {
            guard let parsed = DatabaseTarget.parse(target) else {
                throw DatabaseReplayError("--target \(target): database sessions need HOST:PORT")
            }
            destination = parsed
        }
        let credentials = DatabaseCredentials(
            user: user, database: database, password: try passwordFile.map(DatabaseCredentials.password(fromFile:))
        )
        return try ids.map { id in try DatabaseSessionReplay.load(id, store: store, target: destination, credentials: credentials) }
    }
}

/// The selected flows that can be replayed, and a note for each one that cannot.
struct ReplayPlan {
    var flows: [FlowID] = []
    /// PostgreSQL and MySQL sessions, replayed statement by statement.
    var databaseFlows: [FlowID] = []
    var notes: [String] = []
    /// An `https` server will be contacted, so the TLS context has to be loaded.
    var needsTLS = false

    init(ids: [FlowID], store: Store, override: URLOverride?) throws(StoreError) {
        for id in ids {
            guard let flow = try store.flow(id) else {
                notes.append("no flow \(id) in the store; skipped")
                continue
            }
            if DatabaseSessionReplay.kinds.contains(flow.kind) {
                databaseFlows.append(id)
                continue
            }
            guard flow.kind == FlowKind.http.rawValue, let http = flow.http else {
                notes.append("flow \(id) is \(flow.kind), not an HTTP request; skipped")
                continue
            }
            flows.append(id)
            if override == nil && http.url.lowercased().hasPrefix("https://") { needsTLS = true }
        }
        if override?.scheme == "https" { needsTLS = true }
    }

    /// A stored flow as a request to send again; bodies are read only when their turn comes.
    static func request(_ id: FlowID, store: Store) throws(StoreError) -> ReplayRequest? {
        guard let flow = try store.flow(id), let http = flow.http else { return nil }
        let messages = try store.messages(of: id)
        // A request the operator edited while it was held is replayed as edited: the edit holds it whole.
        if let edit = messages.last(where: { $0.kind == .request && $0.editedFromSequence != nil && !$0.isTruncated }),
            let edited = ReplayRequest(editedText: edit.payload, originalFlowID: id, originalURL: http.url)
        {
            return edited
        }
        let pieces = messages
            .filter { $0.direction == .up && $0.kind == .body }
            .map { (payload: $0.payload, size: $0.size) }
        return ReplayRequest(
            originalFlowID: id, method: http.method, url: http.url, headers: http.requestHeaders, bodyPieces: pieces,
            // Byte counts are written when a flow closes; an interrupted one has none to check against.
            bytesSent: flow.endedAt == nil ? nil : flow.bytesUp - flow.headBytesUp
        )
    }
}

/// Starts replays with at most `concurrency` in flight and `delay` between starts, and hands each result back on
/// the calling thread as it arrives, so output is printed from one place in completion order.
struct ReplayRunner {
    let replayer: HTTPReplayer
    let store: Store
    let override: URLOverride?
    let concurrency: Int
    let delayMilliseconds: Int

    /// - Returns: the results in the order they arrived, and how many replays an interruption left unstarted.
    func run(_ ids: [FlowID], each: (ReplayResult) -> Void) -> (results: [ReplayResult], notStarted: Int) {
        let arrived = DispatchSemaphore(value: 0)
        let inbox = Inbox()
        let interrupted = Interruption()
        var results: [ReplayResult] = []
        var next = ids.startIndex
        var inFlight = 0
        var nextStart = DispatchTime.now()

        func collect() {
            for result in inbox.take() {
                inFlight -= 1
                results.append(result)
                each(result)
            }
        }
        while (next < ids.endIndex && !interrupted.happened) || inFlight > 0 {
            let canStart = next < ids.endIndex && !interrupted.happened && inFlight < concurrency
            if canStart && DispatchTime.now() >= nextStart {
                let id = ids[next]
                next += 1
                inFlight += 1
                nextStart = DispatchTime.now() + .milliseconds(delayMilliseconds)
                start(id) { result in
                    inbox.put(result)
                    arrived.signal()
                }
                continue
            }
            // Wake for a result, or when the next start is due; a bounded wait also notices Ctrl-C.
            let soon = DispatchTime.now() + .milliseconds(200)
            let wake = canStart ? min(nextStart, soon) : soon
            _ = arrived.wait(timeout: wake)
            collect()
        }
        collect()
        interrupted.stop()
        return (results, ids.endIndex - next)
    }

    private func start(_ id: FlowID, done: @escaping @Sendable (ReplayResult) -> Void) {
        let request: ReplayRequest
        do {
            guard let found = try ReplayPlan.request(id, store: store) else {
                done(Self.refused(id, "flow \(id) is no longer in the store"))
                return
            }
            request = found
        } catch {
            done(Self.refused(id, "\(error)"))
            return
        }
        replayer.replay(request, target: override, then: done)
    }

    private static func refused(_ id: FlowID, _ message: String) -> ReplayResult {
        ReplayResult(
            flowID: nil, originalFlowID: id, method: "-", url: "-", status: nil, bytes: 0, milliseconds: 0, error: message
        )
    }

    /// Results handed over from the event loops.
    private final class Inbox: @unchecked Sendable {
        // @unchecked: `items` is only touched under `lock`.
        private let lock = NSLock()
        private var items: [ReplayResult] = []

        func put(_ result: ReplayResult) {
            lock.withLock { items.append(result) }
        }

        func take() -> [ReplayResult] {
            lock.withLock {
                defer { items = [] }
                return items
            }
        }
    }

    /// SIGINT or SIGTERM: start no more replays, let the ones in flight finish and be recorded.
    private final class Interruption: @unchecked Sendable {
        // @unchecked: `flag` is only touched under `lock`; the sources are only touched on the calling thread.
        private let lock = NSLock()
        private var flag = false
        private var sources: [DispatchSourceSignal] = []

        init() {
            sources = [SIGINT, SIGTERM].map { number in
                signal(number, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
                source.setEventHandler { [self] in lock.withLock { flag = true } }
                source.resume()
                return source
            }
        }

        var happened: Bool { lock.withLock { flag } }

        func stop() {
            sources.forEach { $0.cancel() }
        }
    }
}

/// What `sluice replay` prints.
enum ReplayReport {
    /// `#12 <- #3 POST http://127.0.0.1:8081/api -> 200 1.2 KiB 35ms`, or the error in place of the answer.
    static func line(_ result: ReplayResult) -> String {
        let new = result.flowID.map { "#\($0)" } ?? "#-"
        let head = "\(new) <- #\(result.originalFlowID) \(result.method) \(result.url)"
        let time = Formatting.duration(seconds: result.milliseconds / 1000)
        if let error = result.error {
            let status = result.status.map { "\($0) " } ?? ""
            return "\(head) -> \(status)error: \(error)"
        }
        return "\(head) -> \(result.status.map(String.init) ?? "-") \(Formatting.bytes(result.bytes)) \(time)"
    }

    /// `replayed 4: 200 x3, 502 x1; 1 failed; time min 3ms, median 5ms, max 9ms`.
    static func summary(_ results: [ReplayResult]) -> String {
        var counts: [Int: Int] = [:]
        for status in results.compactMap(\.status) { counts[status, default: 0] += 1 }
        let statuses = counts.keys.sorted().map { "\($0) x\(counts[$0] ?? 0)" }.joined(separator: ", ")
        let failures = results.filter { !$0.gotResponse }.count
        var text = "replayed \(results.count)"
        text += statuses.isEmpty ? ": no responses" : ": \(statuses)"
        text += "; \(failures) failed"
        let times = results.filter { $0.flowID != nil }.map(\.milliseconds).sorted()
        if let first = times.first, let last = times.last {
            let half = times.count / 2
            let middle = times.count % 2 == 1 ? times[half] : (times[half - 1] + times[half]) / 2
            func format(_ ms: Double) -> String { Formatting.duration(seconds: ms / 1000) }
            return text + "; time min \(format(first)), median \(format(middle)), max \(format(last))"
        }
        return text
    }
}
