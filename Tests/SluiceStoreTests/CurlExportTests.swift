import Foundation
import SluiceModel
import Testing

@testable import SluiceStore

@Suite struct CurlExportTests {
    /// What the command hands to curl, found by running it in bash with `curl` replaced by a function that writes
    /// its arguments (NUL-separated) and its standard input to files: the quoting is checked by the real shell.
    private func run(_ command: String) throws -> (arguments: [String], stdin: Data) {
        let directory = NSTemporaryDirectory() + "sluice-curl-test-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let script = """
            curl() { printf '%s\\0' "$@" > "$CAPTURE/args"; cat > "$CAPTURE/stdin"; }
            \(command)
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = ["--noprofile", "--norc", "-c", script]
        process.environment = ["CAPTURE": directory, "PATH": "/usr/bin:/bin"]
        process.standardInput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "bash ran the command")
        let arguments = try Data(contentsOf: URL(fileURLWithPath: directory + "/args"))
        let stdin = try Data(contentsOf: URL(fileURLWithPath: directory + "/stdin"))
        var fields = arguments.split(separator: 0, omittingEmptySubsequences: false).map {
            String(decoding: $0, as: UTF8.self)
        }
        if fields.last == "" { fields.removeLast() }
        return (fields, stdin)
    }

    @Test func headersWithQuotesAndControlsSurviveTheShell() throws {
        let headers = [
            HeaderField(name: "Host", value: "api.test:8080"),
            HeaderField(name: "X-Note", value: "it's a 'quoted' \"value\" with $HOME and `backticks`"),
            HeaderField(name: "X-Escape", value: "a\u{1b}[31mred\u{7}\r"),
            HeaderField(name: "X-Empty", value: ""),
            HeaderField(name: "Content-Length", value: "999"),
        ]
        let text = CurlExport.command(
            method: "GET", url: "http://api.test:8080/a?b=1&c='2'", version: "HTTP/1.1", headers: headers, body: Data()
        )
        #expect(text.contains(#"-H 'X-Note: it'\''s a '\''quoted'\'' "value" with $HOME and `backticks`'"#), "\(text)")
        #expect(!text.unicodeScalars.contains { $0.value < 0x20 && $0 != "\n" }, "no raw control characters printed")
        let (arguments, stdin) = try run(text)
        #expect(
            arguments == [
                "--http1.1", "-X", "GET", "http://api.test:8080/a?b=1&c='2'",
                "-H", "X-Note: it's a 'quoted' \"value\" with $HOME and `backticks`",
                "-H", "X-Escape: a\u{1b}[31mred\u{7}\r", "-H", "X-Empty;",
            ],
            "Host matches the URL and Content-Length is curl's to set"
        )
        #expect(stdin.isEmpty)
    }

    @Test func textBodyIsInlineAndBinaryBodyIsPipedThroughPrintf() throws {
        let json = Data(#"{"name":"o'brien","n":1}"#.utf8)
        let post = CurlExport.command(
            method: "POST", url: "http://api.test/x", version: "HTTP/1.1",
            headers: [HeaderField(name: "Content-Type", value: "application/json")], body: json
        )
        #expect(!post.contains("printf"))
        let (postArguments, _) = try run(post)
        #expect(postArguments.suffix(2) == ["--data-binary", String(decoding: json, as: UTF8.self)])

        var binary = Data((0...255).map { UInt8($0) })
        binary.append(contentsOf: Array("%s %% \\x41 \\0101 '".utf8))
        let put = CurlExport.command(
            method: "PUT", url: "http://api.test/blob", version: "HTTP/1.1",
            headers: [HeaderField(name: "Content-Type", value: "application/octet-stream")], body: binary
        )
        #expect(put.hasPrefix("printf '"), "\(put.prefix(80))")
        #expect(put.contains("--data-binary @-"))
        let (putArguments, stdin) = try run(put)
        #expect(stdin == binary, "every byte, NUL included, reaches curl's stdin")
        #expect(putArguments.prefix(3) == ["--http1.1", "-X", "PUT"])
    }

    @Test func largeAndTrickyTextBodies() throws {
        let large = Data(String(repeating: "line of text\n", count: 10_000).utf8)
        let command = CurlExport.command(
            method: "POST", url: "http://api.test/", version: "HTTP/1.1", headers: [], body: large
        )
        #expect(command.hasPrefix("printf '%s' "), "a body too long for one argument goes through a pipe")
        let (arguments, stdin) = try run(command)
        #expect(stdin == large)
        #expect(arguments.contains("Content-Type:"), "no curl default content type when the request had none")

        let at = Data("@/etc/passwd".utf8)
        let atCommand = CurlExport.command(
            method: "POST", url: "http://api.test/", version: "HTTP/1.1", headers: [], body: at)
        #expect(try run(atCommand).arguments.suffix(2) == ["--data-raw", "@/etc/passwd"], "never read as a file")

        let crlf = Data("a=1\r\nb=2".utf8)
        let crlfCommand = CurlExport.command(
            method: "POST", url: "http://api.test/", version: "HTTP/1.1", headers: [], body: crlf)
        #expect(!crlfCommand.contains("\r"))
        #expect(try run(crlfCommand).stdin == crlf)
    }

    @Test func optionsFollowTheRequest() throws {
        func command(
            _ method: String, _ url: String, _ headers: [HeaderField] = [], version: String = "HTTP/1.1"
        ) -> String {
            CurlExport.command(method: method, url: url, version: version, headers: headers, body: Data())
        }
        #expect(command("HEAD", "http://a.test/").hasPrefix("curl --http1.1 --head 'http://a.test/'"))
        #expect(command("GET", "http://a.test/", version: "HTTP/1.0").hasPrefix("curl --http1.0 -X GET"))
        #expect(command("GET", "http://a.test/?a[]=1").contains("--globoff"))
        #expect(command("GET", "http://a.test/x/../y").contains("--path-as-is"))
        #expect(!command("GET", "http://a.test/x/..y").contains("--path-as-is"))
        #expect(
            command("GET", "http://a.test/", [HeaderField(name: "Accept-Encoding", value: "gzip, br")]).contains(
                "--compressed"))
        #expect(
            !command("GET", "http://a.test/", [HeaderField(name: "Accept-Encoding", value: "identity")]).contains(
                "--compressed"))
        #expect(!command("GET", "http://a.test/", [HeaderField(name: "host", value: "A.test:80")]).contains("Host"))
        #expect(!command("GET", "https://a.test:443/", [HeaderField(name: "Host", value: "a.test")]).contains("Host"))
        #expect(
            command("GET", "http://10.0.0.1/", [HeaderField(name: "Host", value: "virtual.test")]).contains(
                "-H 'Host: virtual.test'"))
        #expect(
            command("POST", "http://a.test/", [HeaderField(name: "Content-Length", value: "0")]).contains(
                "Content-Length: 0"))
        #expect(command("GET B", "http://a.test/").contains("-X 'GET B'"))
    }

    @Test func storedFlowsBecomeCommandsOrSayWhyNot() throws {
        var fixture = ExportFixture()
        fixture.exchange(
            1, method: "POST", url: "http://api.test/upload?x=1",
            requestHeaders: [
                HeaderField(name: "Host", value: "api.test"), HeaderField(name: "X-Custom", value: "it's"),
                HeaderField(name: "Content-Type", value: "text/plain"),
                HeaderField(name: "Content-Length", value: "1000"),
            ],
            requestBody: Data(repeating: 0x61, count: 1000), keptUp: 10
        )
        fixture.exchange(2, kind: .websocket, url: "http://chat.test/socket", status: 101)
        fixture.tcp(3)
        fixture.exchange(4, method: "CONNECT", url: "api.test:443")
        let (_, items) = try fixture.load()

        let upload = try CurlExport.command(for: items[0].flow, messages: items[0].messages)
        #expect(upload.warnings.count == 1)
        #expect(upload.warnings.first?.contains("10 of 1000 bytes stored") == true)
        let (arguments, _) = try run(upload.text)
        #expect(
            arguments == [
                "--http1.1", "-X", "POST", "http://api.test/upload?x=1", "-H", "X-Custom: it's", "-H",
                "Content-Type: text/plain", "--data-binary", "aaaaaaaaaa",
            ]
        )
        for (index, fragment) in [(1, "WebSocket"), (2, "tcp"), (3, "CONNECT")] {
            #expect(throws: CurlExportError.self) { try CurlExport.command(for: items[index].flow, messages: []) }
            do {
                _ = try CurlExport.command(for: items[index].flow, messages: [])
            } catch {
                #expect(error.message.contains(fragment), "\(error.message)")
            }
        }
    }
}
