import ArgumentParser
import Dispatch
import Foundation
import Logging
import SluiceAPI
import SluiceCore
import SluiceHTTP
import SluiceModel
import SluiceMySQL
import SluicePostgres
import SluiceSSH
import SluiceStore
import SluiceTLS
import SluiceTUI

/// The store's writer is the bus subscriber that must never lose an event.
extension StoreWriter: FlowBusSubscriber {}

/// Wires configuration, store, bus and engine together and runs them with a front end: the headless log or
/// the terminal UI. Shuts down in the order that keeps every record: stop accepting, close connections, flush.
enum Session {
    enum FrontEnd {
        case headless(quiet: Bool)
        /// The theme given on the command line, over the configured one.
        case terminal(theme: String?)
    }

    static func run(_ options: EngineOptions, frontEnd: FrontEnd) throws {
        // Recordings hold secrets: everything Sluice creates is private to its user.
        umask(0o077)
        let configuration: Configuration
        do {
            configuration = try options.configuration()
        } catch {
            throw fail(error)
        }
        do {
            try Engine.checkListenersAreFree(configuration.listeners)
            if configuration.apiListen != nil { try Engine.checkCanBind(host: configuration.apiProxyHost, what: "api.proxy_host") }
            try Engine.checkTransparentMark(configuration)
        } catch {
            throw fail(error)
        }
        let directory = DataDirectory(path: configuration.dataDirectory)
        var apiAddress: APIListenAddress?
        do {
            apiAddress = try configuration.apiListen.map { text throws(APIError) in try APIListenAddress(parsing: text) }
        } catch {
            throw fail(error)
        }
        var theme: Theme?
        if case .terminal(let chosen) = frontEnd {
            do {
                theme = try Theme.named(chosen ?? configuration.theme, searching: (directory.path as NSString).appendingPathComponent("themes"))
            } catch {
                throw fail(error)
            }
        }
        bootstrapLogging(level: configuration.logLevel, frontEnd: frontEnd, directory: directory)
        let logger = Logger(label: "sluice")

        let writer: StoreWriter
        let firstFlowID: FlowID
        do {
            writer = try StoreWriter(directory: directory, logger: Logger(label: "sluice.store"), onFull: configuration.storeOnFull)
            firstFlowID = try writer.nextFlowID()
        } catch {
            throw fail(error)
        }
        RecorderSettings(upstreamCA: configuration.upstreamCA, insecureUpstream: configuration.insecureUpstream).save(in: directory)
        // Full-text search, indexed behind the writer (`store.search_bytes: 0` turns it off). An index that cannot be
        // opened costs search, not recording: it is said once and the recorder goes on.
        var indexer: SearchIndexer?
        var searchIndex: SearchIndex?
        if configuration.searchBytes > 0 {
            do {
                let index = try SearchIndex(directory: directory, create: true)
                searchIndex = index
                indexer = try SearchIndexer(
                    directory: directory, index: index, settings: SearchIndexer.Settings(maxPayloadBytes: configuration.searchBytes)
                )
            } catch {
                logger.warning("no full-text search index: \(error)")
            }
        }
        indexer?.start(recorder: writer)
        defer { indexer?.stop() }
        // The writer first: an event the TUI's feed shows has reached the writer already (`StoreWriteProgress`).
        var subscribers: [any FlowBusSubscriber] = [writer]
        let apiEvents = APIEventHub()
        if apiAddress != nil { subscribers.append(apiEvents) }
        let feed = LiveFeed()
        switch frontEnd {
        case .headless(let quiet): if !quiet { subscribers.append(HeadlessLog()) }
        case .terminal: subscribers.append(feed)
        }
        let tls: TLSInterception
        var modules: [any ProtocolModule] = []
        do {
            tls = try TLSInterception.load(configuration)
            modules.append(HTTPProxyModule(tls: tls))
            // The SSH module makes Sluice's host key on first use: only when an ssh:// listener asks for it, a
            // transparent one may hand it connections, or the control API may open ssh proxies for sessions.
            if configuration.listeners.contains(where: { $0.scheme == .ssh || $0.scheme.isTransparent }) || apiAddress != nil {
                modules.append(try SSHModule(configuration: configuration))
            }
            modules.append(PostgresModule(tls: tls))
            modules.append(MySQLModule(tls: tls))
        } catch {
            writer.close()
            throw fail(error)
        }
        let engine = Engine(
            configuration: configuration, bus: FlowBus(subscribers: subscribers), firstFlowID: firstFlowID, modules: modules,
            logger: Logger(label: "sluice.engine")
        )
        // Before the listeners open: a SIGHUP sent once they answer (a reload right after start) found SIGHUP ignored
        // and its source not yet armed, and was lost. In the TUI, SIGHUP also quits when it is the terminal hanging up
        // (TerminalUI checks).
        let policyReload = PolicyReload(
            source: PolicySource(file: options.policy, store: options.store), engine: engine, logger: Logger(label: "sluice.policy")
        )
        let hangUps = policyReload.onHangUp()
        defer { hangUps.cancel() }
        // Headless, SIGINT and SIGTERM stop the recorder; armed before the listeners open for the same reason. (The
        // TUI arms its own, which also restore the terminal.)
        let stopSignals: StopSignals? = if case .headless = frontEnd { StopSignals() } else { nil }
        defer { stopSignals?.cancel() }
        do {
            try engine.start()
        } catch {
            engine.shutdown()
            writer.close()
            throw fail(error)
        }

        var api: APIServer?
        if let apiAddress {
            do {
                let token = try APIToken.loadOrCreate(at: (directory.path as NSString).appendingPathComponent("api-token"))
                let store = try? Store(directory: directory)
                let sessions = SessionProxies(
                    engine: engine, recording: writer, store: store,
                    settings: SessionProxies.Settings(host: configuration.apiProxyHost, ports: configuration.apiProxyPorts)
                )
                let replayer = store.map { store in
                    APIReplayer(
                        http: HTTPReplayer(engine: engine, configuration: configuration, tls: tls), databases: DatabaseReplayer(engine: engine),
                        store: store, holdTimeout: configuration.holdTimeout
                    )
                }
                let resources = APIResources(
                    engine: engine, store: store, progress: writer, schemes: ListenSchemes.all, directory: directory, sessions: sessions,
                    acknowledging: writer, replayer: replayer
                )
                let server = try APIServer.start(at: apiAddress, router: APIRouter(routes: resources.routes), token: token, events: apiEvents)
                api = server
                try APIAddressFile.write(server.address, inDirectory: directory.path)
                logger.info("control API on \(server.address), token in \(token.path)")
            } catch {
                api?.stop()
                engine.shutdown()
                writer.close()
                throw fail(error)
            }
        }
        defer {
            if let api {
                APIAddressFile.remove(api.address, inDirectory: directory.path)
                api.stop()
            }
        }

        switch frontEnd {
        case .headless:
            logger.info("recording to \(configuration.dataDirectory)")
            stopSignals?.wait()
            logger.info("stopping")
        case .terminal:
            let store = try? Store(directory: directory)
            let listeners = configuration.listeners.map(\.description)
            let app = App(
                engine: engine, store: store, feed: feed, storeProgress: writer, marks: writer, dataDirectory: directory, title: "Sluice"
            )
            if let store {
                app.replayer = TUIReplayer(
                    replayer: HTTPReplayer(engine: engine, configuration: configuration, tls: tls), databases: DatabaseReplayer(engine: engine),
                    store: store, holdTimeout: configuration.holdTimeout
                )
            }
            app.reloadPolicy = { policyReload.reload() }
            app.searchIndex = searchIndex
            app.setStatus("listening: " + listeners.joined(separator: ", "))
            TerminalUI.run(app, theme: theme ?? Theme.mono)
        }
        engine.shutdown()
        if api != nil {
            // Sessions end with the recorder: a front end reading the store sees they are over, not still open.
            do {
                try writer.interruptOpenSessions()
            } catch {
                logger.error("cannot mark the open API sessions interrupted: \(error)")
            }
        }
        writer.close()
    }

    /// Diagnostics go to stderr, except under the TUI, where they would tear the screen: there they go to
    /// `<data-dir>/logs/sluice.log`.
    static func bootstrapLogging(level: String, frontEnd: FrontEnd, directory: DataDirectory) {
        let logLevel = Logger.Level(rawValue: level) ?? .info
        let logFile: FileHandle? = if case .terminal = frontEnd { openLogFile(in: directory) } else { nil }
        LoggingSystem.bootstrap { label in
            if let logFile {
                var handler = FileLogHandler(label: label, file: logFile)
                handler.logLevel = logLevel
                return handler
            }
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = logLevel
            return handler
        }
    }
}

/// `<data-dir>/logs/sluice.log`, created 0600, opened for appending; nil if it cannot be opened.
private func openLogFile(in directory: DataDirectory) -> FileHandle? {
    try? FileManager.default.createDirectory(atPath: directory.logsPath, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
    let path = (directory.logsPath as NSString).appendingPathComponent("sluice.log")
    let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
    return fd >= 0 ? FileHandle(fileDescriptor: fd, closeOnDealloc: true) : nil
}

/// One line per log record in a file, for the TUI's diagnostics.
struct FileLogHandler: LogHandler {
    let label: String
    let file: FileHandle
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let line = "\(Timestamp.iso8601(Date())) \(event.level) \(label): \(event.message)\n"
        file.write(Data(line.utf8))
    }
}
