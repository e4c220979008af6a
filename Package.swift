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
    ],
    targets: [
        // Value types, the filter language and hexdump. No NIO.
        .target(name: "SluiceModel"),
        // Listeners, the byte relay, FlowBus, the Engine control API, configuration.
        .target(
            name: "SluiceCore",
            dependencies: [
                "SluiceModel",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
            ]
        ),
        // The certificate authority, leaf certificates minted per host, upstream TLS contexts, ClientHello peeking.
        .target(
            name: "SluiceTLS",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ]
        ),
        // HTTP/1.1 explicit and reverse proxy, CONNECT tunnels, TLS interception, WebSocket frames.
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
        // The terminal UI: only `Terminal` calls ncurses; views, key bindings as data, the render loop.
        .target(
            name: "SluiceTUI",
            dependencies: [
                "SluiceModel", "SluiceCore", "SluiceStore", "CNCurses",
                .product(name: "Yams", package: "Yams"),
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
                "SluiceModel", "SluiceCore", "SluiceStore", "SluiceTUI", "SluiceHTTP", "SluiceTLS",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(name: "SluiceModelTests", dependencies: ["SluiceModel"]),
        .testTarget(
            name: "SluiceTLSTests",
            dependencies: [
                "SluiceTLS",
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
                "SluiceTUI", "SluiceModel", "SluiceCore", "SluiceStore",
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "SluiceStoreTests",
            dependencies: ["SluiceStore", "SluiceModel", "SluiceTestSupport", .product(name: "GRDB", package: "GRDB.swift")]
        ),
    ]
)
