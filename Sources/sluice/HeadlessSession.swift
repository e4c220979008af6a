import ArgumentParser
import Dispatch
import Foundation
import Logging
import SluiceCore
import SluiceModel
import SluiceStore

/// The store's writer is the bus subscriber that must never lose an event.
extension StoreWriter: FlowBusSubscriber {}

/// Wires configuration, store, bus and engine together, runs until SIGINT/SIGTERM, then shuts down in the
/// order that keeps every record: stop accepting, close connections, flush the store.
enum HeadlessSession {
    static func run(_ options: EngineOptions) throws {
        // Recordings hold secrets: everything Sluice creates is private to its user.
        umask(0o077)
        let configuration: Configuration
        do {
            configuration = try options.configuration()
        } catch {
            throw fail(error)
        }
        bootstrapLogging(level: configuration.logLevel)
        let logger = Logger(label: "sluice")
        guard !configuration.listeners.isEmpty else {
            throw fail("nothing to listen on: give --listen SPEC (e.g. 'tcp://127.0.0.1:9000=>10.0.0.5:7000') or listen: in the config")
        }

        let writer: StoreWriter
        let firstFlowID: FlowID
        do {
            writer = try StoreWriter(directory: DataDirectory(path: configuration.dataDirectory), logger: Logger(label: "sluice.store"))
            firstFlowID = try writer.nextFlowID()
        } catch {
            throw fail(error)
        }
        var subscribers: [any FlowBusSubscriber] = [writer]
        if !options.quiet { subscribers.append(HeadlessLog()) }
        let engine = Engine(
            configuration: configuration, bus: FlowBus(subscribers: subscribers), firstFlowID: firstFlowID,
            logger: Logger(label: "sluice.engine")
        )

        let stop = DispatchSemaphore(value: 0)
        let signals = [SIGINT, SIGTERM].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { stop.signal() }
            source.resume()
            return source
        }
        do {
            try engine.start()
        } catch {
            engine.shutdown()
            writer.close()
            throw fail(error)
        }
        logger.info("recording to \(configuration.dataDirectory)")
        stop.wait()
        logger.info("stopping")
        engine.shutdown()
        writer.close()
        signals.forEach { $0.cancel() }
    }

    static func bootstrapLogging(level: String) {
        let logLevel = Logger.Level(rawValue: level) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = logLevel
            return handler
        }
    }
}
