import NIOCore
import SluiceModel

/// What a listener does with the clients it accepts. The raw TCP relay is one module; SluiceHTTP provides the HTTP
/// proxies. The executable hands the engine its modules, so Core never imports a protocol target.
public protocol ProtocolModule: Sendable {
    /// The listen schemes this module serves. The executable collects every module's for the spec parsers.
    static var schemes: [ListenScheme] { get }

    /// Called on the client channel's event loop once it is active. `autoRead` is off and an `EarlyInput` handler
    /// holds whatever arrived so far; the module installs its handlers behind it and releases it.
    func accept(_ connection: ClientConnection)
}
