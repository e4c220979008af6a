import FuzzSupport
import NIOCore

// A client's first bytes through `ClientHelloParser.peek`, as `ClientHelloSniffer` calls it each time more arrive.

func check(_ peek: ClientHelloPeek) {
    switch peek {
    case .clientHello(let info):
        if let name = info.serverName {
            require(
                !name.isEmpty && name.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F }, "server name \(name.debugDescription)"
            )
        }
        require(info.alpn.allSatisfy { !$0.isEmpty }, "an empty ALPN protocol")
    case .malformed(let reason):
        // One line for the log.
        require(
            !reason.isEmpty && !reason.contains("\n") && !reason.contains("\r"), "reason \(reason.debugDescription)")
    case .needMoreData, .notTLS:
        break
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = FuzzInput(data, size)
    let bytes = input.bytes
    let whole = ClientHelloParser.peek(bytes)
    check(whole)

    // The same from a ByteBuffer, also one whose readable bytes do not start at index 0.
    require(ClientHelloParser.peek(ByteBuffer(bytes: bytes)) == whole, "ByteBuffer and array disagree")
    var offset = ByteBuffer(bytes: [0x42] + bytes)
    offset.moveReaderIndex(forwardBy: 1)
    require(ClientHelloParser.peek(offset) == whole, "a buffer with a moved reader index disagrees")

    // The sniffer acts on the first answer that is not "need more data": a shorter prefix must never decide
    // otherwise than the whole input does.
    var generator = SplitMix64(seed: input.seed)
    var cuts = [input.splitPoint, max(0, bytes.count - 1)]
    for _ in 0..<6 where !bytes.isEmpty { cuts.append(Int(generator.next() % UInt64(bytes.count))) }
    for cut in cuts {
        let prefix = ClientHelloParser.peek(bytes[..<cut])
        check(prefix)
        require(
            prefix == .needMoreData || prefix == whole,
            "a prefix of \(cut) bytes says \(prefix), all \(bytes.count) say \(whole)")
    }
    // Bytes after a decided input change nothing (early data behind the hello, say).
    if whole != .needMoreData {
        require(
            ClientHelloParser.peek(bytes + [0x17, 0x03, 0x03, 0x00, 0x01, 0xFF]) == whole,
            "bytes after a decision changed it")
    }
    return 0
}

runFuzzer { testOneInput($0, $1) }
