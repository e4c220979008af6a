import Testing

@testable import SluiceRemote

/// The event stream's reader, fed as a socket might cut the bytes.
@Suite struct ServerSentEventParserTests {
    private let stream = Array(
        (": sluice events\n\nevent: flow_opened\ndata: {\"flow\":1}\n\nevent: hold\r\ndata: a\r\ndata: b\r\n\r\n"
            + "data: unnamed\rid: 7\r\rretry: 10\nevent: nothing\n\n").utf8
    )
    private let expected = [
        ServerSentEventParser.Event(name: "flow_opened", data: #"{"flow":1}"#),
        ServerSentEventParser.Event(name: "hold", data: "a\nb"),
        ServerSentEventParser.Event(name: "message", data: "unnamed"),
    ]

    @Test func eventsAreReadWhole() throws {
        var parser = ServerSentEventParser()
        #expect(try parser.feed(stream) == expected)
    }

    @Test func eventsAreTheSameHoweverTheBytesAreCut() throws {
        for size in [1, 2, 3, 7, 64] {
            var parser = ServerSentEventParser()
            var events: [ServerSentEventParser.Event] = []
            var start = 0
            while start < stream.count {
                events += try parser.feed(stream[start..<min(start + size, stream.count)])
                start += size
            }
            #expect(events == expected, "cut every \(size) bytes")
        }
    }

    @Test func aCRLFCutBetweenItsBytesIsOneLineEnd() throws {
        var parser = ServerSentEventParser()
        #expect(try parser.feed(Array("data: x\r".utf8)) == [])
        #expect(try parser.feed(Array("\n\r".utf8)) == [ServerSentEventParser.Event(name: "message", data: "x")])
        #expect(try parser.feed(Array("\ndata: y\n\n".utf8)) == [ServerSentEventParser.Event(name: "message", data: "y")])
    }

    @Test func aFieldWithoutAColonOrSpaceIsRead() throws {
        var parser = ServerSentEventParser()
        #expect(try parser.feed(Array("data\ndata:x\n\n".utf8)) == [ServerSentEventParser.Event(name: "message", data: "\nx")])
    }

    @Test func aLineOverTheLimitIsAnErrorNotMemory() {
        var parser = ServerSentEventParser(maxLineBytes: 16)
        #expect(throws: ServerSentEventParser.TooLong(limit: 16)) {
            _ = try parser.feed(Array(repeating: UInt8(ascii: "a"), count: 17))
        }
    }
}
