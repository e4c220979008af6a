import Foundation
import Logging
import SluiceModel
import Testing

@testable import SluiceStore

/// One writer per store: a second would hand out the flow ids the first is using.
@Suite struct StoreLockTests {
    private func temporaryDirectory() -> DataDirectory {
        DataDirectory(path: NSTemporaryDirectory() + "sluice-lock-test-\(UUID().uuidString)")
    }

    @Test func aSecondWriterOnTheSameStoreIsRefusedUntilTheFirstCloses() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory.path) }
        let first = try StoreWriter(directory: directory, logger: Logger(label: "test"))
        first.receive(
            .flowOpened(
                FlowOpened(
                    flowID: FlowID(1), kind: .tcp, listener: "l", client: Endpoint(host: "a", port: 1),
                    server: Endpoint(host: "b", port: 2),
                    time: Date()
                )
            )
        )

        var message: String?
        do {
            let second = try StoreWriter(directory: directory, logger: Logger(label: "test"))
            second.close()
        } catch {
            message = error.message
        }
        #expect(
            message
                == "another sluice (pid \(getpid())) is recording into \(directory.path): stop it first (a sluice with a terminal UI can replay with r)"
        )
        first.close()
        #expect(
            try Store(directory: directory).flows(limit: 10).map(\.state) == ["open"],
            "the refused writer touched nothing")

        let third = try StoreWriter(directory: directory, logger: Logger(label: "test"))
        #expect(try third.nextFlowID() == FlowID(2))
        third.close()
    }

    @Test func theLockFileIsPrivate() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory.path) }
        let writer = try StoreWriter(directory: directory, logger: Logger(label: "test"))
        defer { writer.close() }
        let path = (directory.path as NSString).appendingPathComponent("sluice.lock")
        let mode = try #require(FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int)
        #expect(mode == 0o600)
    }
}
