import NIOCore
import SluiceModel
import Testing

@testable import SluiceCore

/// Protocols as modules would declare them, by their openings alone.
private func prefixProtocol(_ name: String, _ opening: String, ports: Set<Int>) -> TransparentProtocol {
    let expected = Array(opening.utf8)
    return TransparentProtocol(
        scheme: ListenScheme(name: name, target: .endpoint), ports: ports,
        opening: .clientFirst { bytes, _ in
            if bytes.starts(with: expected) { return .match }
            return expected.starts(with: bytes) ? .needMoreData : .noMatch
        }
    )
}

private let greet = prefixProtocol("greet", "HELLO", ports: [7000])
private let hel = prefixProtocol("hel", "HEL", ports: [7001])
private let server = TransparentProtocol(scheme: ListenScheme(name: "serverfirst", target: .endpoint), ports: [3306], opening: .serverFirst)

private func view(_ text: String) -> ByteBufferView { ByteBuffer(string: text).readableBytesView }

@Suite struct ProtocolSnifferTests {
    @Test func aServerFirstProtocolIsChosenByItsPortBeforeAnyByte() {
        let sniffer = ProtocolSniffer(protocols: [greet, server])
        #expect(sniffer.choiceBeforeBytes(port: 3306) == "serverfirst")
        #expect(sniffer.choiceBeforeBytes(port: 3307) == nil)
        #expect(sniffer.choiceBeforeBytes(port: 7000) == nil)
    }

    @Test func nothingYetMeansWaitUnlessFinal() {
        let sniffer = ProtocolSniffer(protocols: [greet])
        #expect(sniffer.decide(view(""), port: 7000, final: false) == .needMoreData)
        #expect(sniffer.decide(view(""), port: 7000, final: true) == .tcp)
    }

    @Test func byteAtATimeWaitsUntilTheOpeningIsWhole() {
        let sniffer = ProtocolSniffer(protocols: [greet])
        let text = "HELLO world"
        for length in 1..<5 {
            #expect(sniffer.decide(view(String(text.prefix(length))), port: 1, final: false) == .needMoreData, "after \(length) bytes")
        }
        for length in 5...text.count {
            #expect(sniffer.decide(view(String(text.prefix(length))), port: 1, final: false) == .protocolNamed("greet"))
        }
    }

    @Test func anOpeningThatStopsFittingIsTCPAtOnce() {
        let sniffer = ProtocolSniffer(protocols: [greet])
        #expect(sniffer.decide(view("HEX"), port: 7000, final: false) == .tcp)
        #expect(sniffer.decide(view("\u{0}"), port: 7000, final: false) == .tcp)
    }

    @Test func aPartialOpeningAtTheEndIsTCP() {
        let sniffer = ProtocolSniffer(protocols: [greet])
        #expect(sniffer.decide(view("HELL"), port: 7000, final: true) == .tcp)
    }

    /// `HELLO` fits both; whichever usually runs on the port is asked first and wins.
    @Test func theProtocolOfThePortIsAskedFirst() {
        let sniffer = ProtocolSniffer(protocols: [greet, hel])
        #expect(sniffer.decide(view("HELLO"), port: 7000, final: false) == .protocolNamed("greet"))
        #expect(sniffer.decide(view("HELLO"), port: 7001, final: false) == .protocolNamed("hel"))
        // Elsewhere the declaration order decides, and `greet` still needs bytes after `HEL`: wait for it.
        #expect(sniffer.decide(view("HEL"), port: 1, final: false) == .needMoreData)
        #expect(sniffer.decide(view("HEL"), port: 1, final: true) == .protocolNamed("hel"))
        #expect(sniffer.decide(view("HELX"), port: 1, final: false) == .protocolNamed("hel"))
    }

    @Test func serverFirstProtocolsAreNeverSniffed() {
        let sniffer = ProtocolSniffer(protocols: [server])
        #expect(sniffer.decide(view("anything"), port: 3306, final: false) == .tcp)
    }

    /// At `maxBytes` a protocol that still wants more is no match: nobody makes Sluice buffer more.
    @Test func boundedByMaxBytes() {
        let endless = TransparentProtocol(scheme: ListenScheme(name: "endless", target: .endpoint), ports: [], opening: .clientFirst { _, _ in .needMoreData })
        let sniffer = ProtocolSniffer(protocols: [endless])
        let almost = String(repeating: "a", count: ProtocolSniffer.maxBytes - 1)
        #expect(sniffer.decide(view(almost), port: 1, final: false) == .needMoreData)
        #expect(sniffer.decide(view(almost + "a"), port: 1, final: false) == .tcp)
        // The sniffer is shown at most `maxBytes`.
        let counting = TransparentProtocol(
            scheme: ListenScheme(name: "counting", target: .endpoint), ports: [],
            opening: .clientFirst { bytes, _ in bytes.count <= ProtocolSniffer.maxBytes ? .noMatch : .match }
        )
        #expect(ProtocolSniffer(protocols: [counting]).decide(view(almost + "bbbb"), port: 1, final: false) == .tcp)
    }

    @Test func noProtocolsMeansTCP() {
        #expect(ProtocolSniffer(protocols: []).decide(view("GET / HTTP/1.1\r\n"), port: 80, final: false) == .tcp)
        #expect(ProtocolSniffer(protocols: []).choiceBeforeBytes(port: 80) == nil)
    }

    @Test func thePortReachesTheSniffer() {
        let portal = TransparentProtocol(
            scheme: ListenScheme(name: "portal", target: .endpoint), ports: [], opening: .clientFirst { _, port in port == 443 ? .match : .noMatch }
        )
        let sniffer = ProtocolSniffer(protocols: [portal])
        #expect(sniffer.decide(view("x"), port: 443, final: false) == .protocolNamed("portal"))
        #expect(sniffer.decide(view("x"), port: 444, final: false) == .tcp)
    }
}
