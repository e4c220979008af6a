import Foundation
import NIOCore
import NIOPosix

/// One short line for an error from the network, e.g. "connection refused (10.0.0.5:7000)" rather than the
/// structure dump `String(describing:)` gives.
public func describe(_ error: Error) -> String {
    if let ioError = error as? IOError {
        return String(cString: strerror(ioError.errnoCode)).lowercased()
    }
    if let connectError = error as? NIOConnectionError {
        var reasons: [String] = []
        for attempt in connectError.connectionErrors where !reasons.contains(describe(attempt.error)) {
            reasons.append(describe(attempt.error))
        }
        if !reasons.isEmpty { return reasons.joined(separator: "; ") }
        if let dnsError = connectError.dnsAAAAError ?? connectError.dnsAError {
            return "cannot resolve \(connectError.host): \(dnsError)"
        }
        return "cannot connect to \(connectError.host):\(connectError.port)"
    }
    if let channelError = error as? ChannelError {
        switch channelError {
        case .connectTimeout(let timeout):
            return "connect timed out after \(Double(timeout.nanoseconds) / 1e9)s"
        case .ioOnClosedChannel, .alreadyClosed, .outputClosed, .inputClosed:
            return "connection already closed"
        case .eof:
            return "connection closed by peer"
        default:
            return "\(channelError)"
        }
    }
    return "\(error)"
}
