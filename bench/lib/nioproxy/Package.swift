// swift-tools-version:6.0
// A bare SwiftNIO HTTP/1.1 reverse proxy: the floor any proxy built on SwiftNIO's HTTP codec stands on.
// bench/http_floor.sh builds it (release) and measures it beside haproxy and Sluice.
import PackageDescription

let package = Package(
    name: "nioproxy",
    dependencies: [.package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2")],
    targets: [
        .executableTarget(
            name: "nioproxy",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        )
    ]
)
