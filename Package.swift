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
        // HTTP/1.1 explicit and reverse proxy, CONNECT tunnels, WebSocket frames.
        .target(
            name: "SluiceHTTP",
            dependencies: [
                "SluiceModel", "SluiceCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        // SQLite (one batched writer), JSON Lines logs, read queries for the CLI and TUI.
        .target(
            name: "SluiceStore",
            dependencies: [
                "SluiceModel",
                .product(name: "GRDB", package: "GRDB.swift"),
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
                "SluiceModel", "SluiceCore", "SluiceStore", "SluiceTUI", "SluiceHTTP",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(name: "SluiceModelTests", dependencies: ["SluiceModel"]),
        .testTarget(
            name: "SluiceHTTPTests",
            dependencies: [
                "SluiceHTTP", "SluiceCore", "SluiceModel", "SluiceTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
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
                "SluiceTUI", "SluiceModel", "SluiceCore",
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ]
        ),
        .testTarget(name: "SluiceStoreTests", dependencies: ["SluiceStore", "SluiceModel", "SluiceTestSupport"]),
    ]
)
