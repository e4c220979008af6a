import NIOConcurrencyHelpers
import NIOCore
import SluiceModel

/// How a connection came through a transparent listener: what the module it was handed to may want to know beyond
/// its spec (whose target is the original destination).
public struct TransparentRoute: Sendable {
    /// The `tproxy://` or `redirect://` listener that accepted it.
    public var listener: ListenSpec
    /// Where the client meant to go.
    public var originalDestination: Endpoint
    /// The row of the target table that matched; nil for an unknown destination relayed (`transparent.unknown: relay`).
    public var target: TransparentTarget?
    /// `SO_MARK` for the connections Sluice makes for it; 0: none.
    public var mark: UInt32
    /// Said as an alert on the connection's first flow (why an unknown destination was relayed).
    var note: String?
}

/// Serves `tproxy://` and `redirect://` listeners: finds each connection's original destination, refuses loops, looks
/// the destination up in the target table, chooses the protocol (the target's, the port's, or what the first bytes
/// say), and hands the connection to that protocol's module as if it had arrived on a listener of the module's
/// scheme whose target is the original destination.
///
/// Every refusal is recorded as a `tcp` flow to the original destination with its reason, as access refusals are.
struct TransparentModule: ProtocolModule {
    static var schemes: [ListenScheme] { [.tproxy, .redirect] }

    let settings: TransparentSettings
    let sniffer: ProtocolSniffer
    /// The module serving each protocol by name, `tcp` (the raw relay) among them.
    let handlers: [String: (scheme: ListenScheme, module: any ProtocolModule)]
    let ownListeners: OwnListeners
    let originalDestination: DestinationFinder

    /// Where an accepted connection was going, by the listener's scheme; on the channel's event loop.
    typealias DestinationFinder = @Sendable (Channel, ListenScheme) -> EventLoopFuture<Endpoint>

    /// - Parameters:
    ///   - modules: every module of the engine by scheme.
    ///   - protocols: every module's protocols; those a module serves are the candidates, in this order.
    init(
        settings: TransparentSettings, modules: [ListenScheme: any ProtocolModule], protocols: [TransparentProtocol], ownListeners: OwnListeners,
        originalDestination: @escaping DestinationFinder
    ) {
        self.originalDestination = originalDestination
        self.settings = settings
        var handlers: [String: (scheme: ListenScheme, module: any ProtocolModule)] = [:]
        var served: [TransparentProtocol] = []
        for candidate in protocols {
            guard handlers[candidate.name] == nil, let module = modules[candidate.scheme] else { continue }
            handlers[candidate.name] = (candidate.scheme, module)
            served.append(candidate)
        }
        if let relay = modules[.tcp] { handlers[TransparentProtocol.tcpName] = (.tcp, relay) }
        self.handlers = handlers
        self.sniffer = ProtocolSniffer(protocols: served)
        self.ownListeners = ownListeners
    }

    func accept(_ connection: ClientConnection) {
        originalDestination(connection.channel, connection.spec.scheme).whenComplete { result in
            switch result {
            case .success(let destination):
                route(connection, to: destination)
            case .failure(let error):
                refuse(connection, server: connection.spec.listen, reason: "\(error)")
            }
        }
    }

    private func route(_ connection: ClientConnection, to destination: Endpoint) {
        if ownListeners.contains(destination) {
            refuse(connection, server: destination, reason: "\(destination) is Sluice's own listener (a loop)")
            return
        }
        guard let target = settings.target(for: destination.host, port: destination.port) else {
            switch settings.unknown {
            case .refuse:
                refuse(connection, server: destination, reason: "\(destination) is in no target (transparent.unknown: refuse)")
            case .relay:
                handOver(
                    connection, protocolName: TransparentProtocol.tcpName, destination: destination, target: nil,
                    note: "\(destination) is in no target: relayed as tcp (transparent.unknown: relay)"
                )
            }
            return
        }
        if target.action == .deny {
            refuse(connection, server: destination, reason: "\(destination) is denied by \(target.label)")
            return
        }
        if target.protocolName != TransparentProtocol.autoName {
            handOver(connection, protocolName: target.protocolName, destination: destination, target: target)
        } else if let chosen = sniffer.choiceBeforeBytes(port: destination.port) {
            handOver(connection, protocolName: chosen, destination: destination, target: target)
        } else {
            sniff(connection, destination: destination, target: target)
        }
    }

    private func sniff(_ connection: ClientConnection, destination: Endpoint, target: TransparentTarget) {
        let channel = connection.channel
        do {
            let operations = channel.pipeline.syncOperations
            let early = try operations.handler(type: EarlyInput.self)
            // Not retained by its own closure: the pipeline holds it until it hands over.
            let sniffer = FirstBytesSniffer(sniffer: sniffer, port: destination.port, timeout: .fromSeconds(settings.sniffTimeout)) { verdict in
                let name: String =
                    switch verdict {
                    case .protocolNamed(let name): name
                    case .tcp, .needMoreData: TransparentProtocol.tcpName
                    }
                do {
                    try operations.handler(type: FirstBytesSniffer.self).handOver()
                } catch {
                    channel.close(promise: nil)
                    return
                }
                handOver(connection, protocolName: name, destination: destination, target: target)
            }
            try operations.addHandler(sniffer, position: .after(early))
            early.release()
            sniffer.start()
        } catch {
            channel.close(promise: nil)
        }
    }

    private func handOver(
        _ connection: ClientConnection, protocolName: String, destination: Endpoint, target: TransparentTarget?, note: String? = nil
    ) {
        guard let handler = handlers[protocolName] else {
            refuse(connection, server: destination, reason: "no module of this sluice serves \(protocolName) (\(target?.label ?? "transparent"))")
            return
        }
        let spec = ListenSpec(
            scheme: handler.scheme, listen: connection.spec.listen, target: destination, options: target?.options(for: handler.scheme) ?? [:]
        )
        let route = TransparentRoute(listener: connection.spec, originalDestination: destination, target: target, mark: settings.mark, note: note)
        handler.module.accept(connection.handedOver(as: spec, route: route))
    }

    private func refuse(_ connection: ClientConnection, server: Endpoint, reason: String) {
        if let recorder = connection.openFlow(kind: .tcp, server: server) {
            recorder.failed(.proxy, "refused: \(reason)")
            recorder.finish()
        }
        connection.channel.close(promise: nil)
    }
}

/// The addresses Sluice's listeners are bound to, so that a transparent connection meant for one of them (a loop: the
/// rules sent Sluice's own traffic back, or a client connected to the listener itself) is refused.
final class OwnListeners: Sendable {
    private let addresses = NIOLockedValueBox<[Int: SocketAddress]>([:])

    func add(_ address: SocketAddress?, id: Int) {
        guard let address else { return }
        addresses.withLockedValue { $0[id] = address }
    }

    func remove(id: Int) {
        _ = addresses.withLockedValue { $0.removeValue(forKey: id) }
    }

    func removeAll() {
        addresses.withLockedValue { $0 = [:] }
    }

    /// Whether `destination` is one of the listeners: the same port, and the listener's address or, for a listener on
    /// every address (`0.0.0.0`, `::`), any address of this host.
    func contains(_ destination: Endpoint) -> Bool {
        let listening = addresses.withLockedValue { Array($0.values) }.filter { $0.port == destination.port }
        // An IPv4-mapped address is compared as the IPv4 address it is.
        guard !listening.isEmpty, let raw = CIDR.addressBytes(destination.host),
            let target = OriginalDestination.endpoint(addressBytes: raw, port: destination.port), let bytes = CIDR.addressBytes(target.host)
        else { return false }
        for address in listening {
            guard let own = OriginalDestination.endpoint(address).flatMap({ CIDR.addressBytes($0.host) }) else { continue }
            if own.allSatisfy({ $0 == 0 }) ? LocalAddresses.contains(bytes) : own == bytes { return true }
        }
        return false
    }
}
