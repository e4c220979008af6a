import NIOCore
import SluiceModel

/// What a listener does with the clients it accepts. The raw TCP relay is one module; SluiceHTTP provides the HTTP
/// proxies. The executable hands the engine its modules, so Core never imports a protocol target.
public protocol ProtocolModule: Sendable {
    /// The listen schemes this module serves. The executable collects every module's for the spec parsers.
    static var schemes: [ListenScheme] { get }

    /// The protocols this module serves behind transparent listeners: how each is recognised and the scheme (one of
    /// `schemes`, or one whose spec never comes from the operator) its connections are handed over as. A connection
    /// handed over arrives at `accept` like any other, its `spec.target` the original destination and
    /// `connection.route` saying how it came.
    static var transparentProtocols: [TransparentProtocol] { get }

    /// Called on the client channel's event loop once it is active. `autoRead` is off and an `EarlyInput` handler
    /// holds whatever arrived so far; the module installs its handlers behind it and releases it.
    func accept(_ connection: ClientConnection)
}

extension ProtocolModule {
    /// None, unless the module says otherwise.
    public static var transparentProtocols: [TransparentProtocol] { [] }
}
