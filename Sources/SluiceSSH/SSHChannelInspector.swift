import NIOCore
import NIOSSH
import SluiceCore
import SluiceModel

/// Watches one relayed session channel: records its bytes into the connection's flow and decides what crosses.
/// The relay handlers only move bytes and requests; everything Sluice makes of a session happens here.
final class SSHChannelInspector {
    private let recorder: FlowRecorder
    private weak var client: SSHChannelRelay?

    init(recorder: FlowRecorder) {
        self.recorder = recorder
    }

    func attach(client: SSHChannelRelay) {
        self.client = client
    }

    private var server: SSHChannelRelay? { client?.peer }

    // MARK: Client to target

    func clientData(_ buffer: ByteBuffer, type: SSHChannelData.DataType) {
        _ = recorder.chunk(buffer, direction: .up)
        server?.send(buffer, type: type)
    }

    func exec(_ request: SSHChannelRequestEvent.ExecRequest) {
        client?.forwardRequest(request, wantReply: request.wantReply)
    }

    func ptyRequested(_ request: SSHChannelRequestEvent.PseudoTerminalRequest) {}

    func windowChanged(_ request: SSHChannelRequestEvent.WindowChangeRequest) {}

    func shellRequested() {}

    func subsystemRequested(_ name: String) {}

    func clientEnded() {}

    func channelClosed() {}

    // MARK: Target to client

    func serverData(_ buffer: ByteBuffer, type: SSHChannelData.DataType) {
        _ = recorder.chunk(buffer, direction: .down)
        client?.send(buffer, type: type)
    }

    func exitStatus(_ status: Int) {}

    func exitSignal(_ name: String) {}
}
