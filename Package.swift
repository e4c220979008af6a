// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "sluice",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "sluice", targets: ["sluice"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
        .package(url: "https://github.com/apple/swift-nio-ssh.git", from: "0.15.1"),
    ],
    targets: [
        // Value types, the filter language and hexdump. No NIO.
        .target(name: "SluiceModel"),
        // The risk policy: rates shell commands and SQL statements from rules (built in and YAML). Pure, no I/O.
        .target(
            name: "SluicePolicy",
            dependencies: ["SluiceModel", .product(name: "Yams", package: "Yams")]
        ),
        // Listeners, the byte relay, FlowBus, the Engine control API, configuration.
        .target(
            name: "SluiceCore",
            dependencies: [
                "SluiceModel", "SluicePolicy",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
            ]
        ),
        // The certificate authority, leaf certificates minted per host, upstream TLS contexts, ClientHello peeking, and
        // TLSInterception, which bundles them for any protocol module that terminates TLS.
        .target(
            name: "SluiceTLS",
            dependencies: [
                "SluiceModel",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ]
        ),
        // HTTP/1.1 explicit and reverse proxy, CONNECT tunnels, WebSocket frames.
        .target(
            name: "SluiceHTTP",
            dependencies: [
                "SluiceModel", "SluiceCore", "SluiceTLS",
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        // A headless VT100/xterm screen (characters only): reads a shell's line for SSH command capture, and shows a
        // recording's screen at a moment in the TUI's player. Pure Swift, no dependencies.
        .target(name: "SluiceTerminal"),
        // SSH man-in-the-middle: Sluice is an SSH server to the client and an SSH client to the target; session
        // channels relayed, shell lines reconstructed and judged, sessions recorded as asciicast.
        .target(
            name: "SluiceSSH",
            dependencies: [
                "SluiceModel", "SluiceCore", "SluiceStore", "SluiceTLS", "SluiceTerminal",
                .product(name: "NIOSSH", package: "swift-nio-ssh"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // zlib, to decode gzip and deflate bodies for display and export (never on the relay path).
        .systemLibrary(name: "CZlib", path: "Sources/CZlib"),
        // SQLite (one batched writer), JSON Lines logs, read queries for the CLI and TUI; HAR, curl and body decoding.
        .target(
            name: "SluiceStore",
            dependencies: [
                "SluiceModel", "CZlib",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "GRDB", package: "GRDB.swift"),
                // SQLite's C API, for the writer's prepared statements (RowStatement).
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // ncursesw plus a C shim for the macros and globals Swift cannot import.
        .systemLibrary(name: "CNCurses", path: "Sources/CNCurses"),
        // The terminal UI: only `Terminal` calls ncurses; views, key bindings as data, the render loop; the recording
        // player draws a `TerminalScreen`.
        .target(
            name: "SluiceTUI",
            dependencies: [
                "SluiceModel", "SluiceCore", "SluiceStore", "SluiceTerminal", "CNCurses",
                .product(name: "Yams", package: "Yams"),
            ]
        ),
        // PostgreSQL: the sans-I/O wire protocol (a framer that cuts each direction into messages, streaming the large
        // ones; frontend and backend decoders; the few encoders a proxy needs) and the inspector that records,
        // judges, holds and blocks statements on the shared relay.
        .target(
            name: "SluicePostgres",
            dependencies: [
                "SluiceModel", "SluiceCore", "SluicePolicy", "SluiceTLS",
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // MySQL/MariaDB: the sans-I/O client/server protocol (a packet framer that joins continued packets and streams
        // the large payloads; greeting, handshake response, command and response decoders with the capability rewrites;
        // a response tracker that says when a command's answer is complete; the few encoders a proxy needs).
        .target(
            name: "SluiceMySQL",
            dependencies: [
                "SluiceModel", "SluiceCore", "SluicePolicy", "SluiceTLS",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                // MySQLClientSession's password scrambles (SHA-1, SHA-256) and caching_sha2_password's RSA-OAEP.
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
            ]
        ),
        // The local control API: an HTTP server (NIO's HTTP/1 pipeline) with a bearer token, JSON resources over the
        // engine and the store, and the live event stream.
        .target(
            name: "SluiceAPI",
            dependencies: [
                "SluiceModel", "SluiceCore", "SluiceStore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // `sluice attach`: the TUI's engine controls and live feed over a running recorder's control API (an HTTP/1
        // client and the event stream's reader).
        .target(
            name: "SluiceRemote",
            dependencies: [
                "SluiceModel", "SluiceCore", "SluiceTUI", "SluiceAPI",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]
        ),
        // Peers and harnesses for tests; never linked into the binary.
        .target(
            name: "SluiceTestSupport",
            dependencies: [
                "SluiceModel", "SluiceCore",
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "sluice",
            dependencies: [
                "SluiceModel", "SluicePolicy", "SluiceCore", "SluiceStore", "SluiceTUI", "SluiceHTTP", "SluiceTLS", "SluiceSSH",
                "SluicePostgres", "SluiceMySQL", "SluiceAPI", "SluiceRemote",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The store writer alone under a load of recorded HTTP exchanges (bench/README.md). Built with the rest, so
        // it keeps compiling; never part of `sluice`.
        .executableTarget(
            name: "sluice-writer-bench",
            dependencies: ["SluiceModel", "SluiceStore", .product(name: "Logging", package: "swift-log")],
            path: "bench/writer"
        ),
        .testTarget(name: "SluiceModelTests", dependencies: ["SluiceModel", "SluiceTestSupport"]),
        .testTarget(name: "SluiceTerminalTests", dependencies: ["SluiceTerminal", "SluiceTestSupport"]),
        .testTarget(
            name: "SluicePolicyTests",
            dependencies: ["SluicePolicy", "SluiceModel", .product(name: "Yams", package: "Yams")]
        ),
        .testTarget(
            name: "SluiceTLSTests",
            dependencies: [
                "SluiceTLS", "SluiceTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .testTarget(
            name: "SluiceHTTPTests",
            dependencies: [
                "SluiceHTTP", "SluiceCore", "SluiceModel", "SluiceTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "SluiceCoreTests",
            dependencies: [
                "SluiceCore", "SluiceModel", "SluiceTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "SluiceTUITests",
            dependencies: [
                "SluiceTUI", "SluiceModel", "SluiceCore", "SluiceStore", "SluiceTerminal", "SluiceTestSupport",
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "SluiceSSHTests",
            dependencies: [
                "SluiceSSH", "SluiceModel", "SluiceStore", "SluiceTerminal", "SluiceTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOSSH", package: "swift-nio-ssh"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .testTarget(
            name: "SluicePostgresTests",
            dependencies: [
                "SluicePostgres", "SluiceCore", "SluiceModel", "SluicePolicy", "SluiceTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "SluiceMySQLTests",
            dependencies: [
                "SluiceMySQL", "SluiceCore", "SluiceModel", "SluicePolicy", "SluiceTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                // MySQLClientSessionTests decrypts caching_sha2_password's RSA-encrypted password.
                .product(name: "_CryptoExtras", package: "swift-crypto"),
            ]
        ),
        .testTarget(
            name: "SluiceAPITests",
            dependencies: ["SluiceAPI", "SluiceCore", "SluiceModel", "SluiceStore", "SluiceTestSupport", .product(name: "Yams", package: "Yams"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "SluiceRemoteTests",
            dependencies: [
                "SluiceRemote", "SluiceAPI", "SluiceCore", "SluiceModel", "SluiceTUI", "SluiceTestSupport",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "SluiceStoreTests",
            dependencies: ["SluiceStore", "SluiceModel", "SluiceTestSupport", .product(name: "GRDB", package: "GRDB.swift")]
        ),
    ]
)

// libFuzzer targets, one per parser that reads peer-controlled bytes (`scripts/fuzz` builds and runs them). They
// exist only when SLUICE_FUZZ=1, so an ordinary build never sees them. Each compiles the parser's own source files
// (symbolic links under Fuzz/) into an instrumented module of its own: only those modules get `-sanitize=fuzzer`
// (coverage) and `-sanitize=address`, while NIO, Yams and the rest come from the same uninstrumented debug build as
// `swift build`, so building the fuzzers after it takes seconds. The instrumented modules are optimised (`-O` keeps
// bounds and overflow checks): twice the executions per second of `-Onone`.
if Context.environment["SLUICE_FUZZ"] == "1" {
    let instrumented: [SwiftSetting] = [.unsafeFlags(["-sanitize=fuzzer,address", "-O"])]
    // lld: gold warns about every ASan symbol it cannot export.
    let fuzzerLink: [LinkerSetting] = [.unsafeFlags(["-sanitize=fuzzer,address", "-use-ld=lld"])]
    // A fuzz target lists what the production target whose files it compiles depends on (SluiceTLS's NIOSSL, X509
    // and Crypto aside: the parsers do not need them, and a release build of BoringSSL takes minutes), so that an
    // import added to one of those files is found: a module missing here is still found among the built modules,
    // but without the C modules it needs ("missing required module '_AtomicsShims'").
    let nio: [Target.Dependency] = [.product(name: "NIOCore", package: "swift-nio")]
    let sluiceCore: [Target.Dependency] = [
        "SluiceModel", "SluicePolicy", .product(name: "NIOPosix", package: "swift-nio"),
        .product(name: "NIOConcurrencyHelpers", package: "swift-nio"), .product(name: "Logging", package: "swift-log"),
        .product(name: "Yams", package: "Yams"),
    ] + nio
    let sluiceHTTP: [Target.Dependency] = [
        "SluiceCore", .product(name: "NIOHTTP1", package: "swift-nio"), .product(name: "NIOTLS", package: "swift-nio"),
    ] + sluiceCore
    let sluiceTLS: [Target.Dependency] = [
        .product(name: "NIOPosix", package: "swift-nio"), .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
    ] + nio
    package.targets += [
        .systemLibrary(name: "CLibFuzzer", path: "Fuzz/CLibFuzzer"),
        .target(name: "FuzzSupport", dependencies: ["CLibFuzzer"], path: "Fuzz/Support", swiftSettings: instrumented),
        .target(
            name: "FuzzHTTP1", dependencies: ["FuzzSupport"] + sluiceHTTP, path: "Fuzz/HTTP1",
            swiftSettings: instrumented
        ),
    ]
    let fuzzers: [(name: String, dependencies: [Target.Dependency])] = [
        ("http1-request", ["FuzzHTTP1"]),
        ("http1-response", ["FuzzHTTP1"]),
        ("http1-chunked", ["FuzzHTTP1"]),
        ("websocket", sluiceHTTP),
        ("clienthello", sluiceTLS),
        ("filter", []),  // compiles all of SluiceModel, which depends on nothing
        ("json", []),
        ("config", sluiceCore),
        ("postgres", nio),
        ("mysql", nio),
    ]
    for fuzzer in fuzzers {
        package.targets.append(
            .executableTarget(
                name: "fuzz-\(fuzzer.name)", dependencies: ["FuzzSupport"] + fuzzer.dependencies,
                path: "Fuzz/\(fuzzer.name)", swiftSettings: instrumented, linkerSettings: fuzzerLink
            )
        )
    }
}
