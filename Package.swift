// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "pushbridge",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "pushbridge", targets: ["pushbridge"]),
        .library(name: "PushTokens", targets: ["PushTokens"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-configuration.git", from: "1.4.0", traits: [.defaults, "YAML"]),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.0.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
    ],
    targets: [
        // Push token plugins: parse, validate, canonicalise, hash. No I/O.
        .target(
            name: "PushTokens",
            dependencies: [.product(name: "Crypto", package: "swift-crypto")]
        ),
        // The Mobile Engage v3 wire protocol: requests, headers, answers, error classes.
        .target(
            name: "MobileEngage",
            dependencies: [
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
            ]
        ),
        // The SDK workflow as a pure state machine.
        .target(
            name: "Workflow",
            dependencies: [
                "MobileEngage",
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // Devices and their queued intents, durably.
        .target(
            name: "Storage",
            dependencies: [
                "Workflow",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The running engine: workers, scheduling, backoff, concurrency limits.
        .target(
            name: "Bridge",
            dependencies: [
                "Workflow", "Storage", "MobileEngage",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // The faithful local Mobile Engage backend.
        .target(
            name: "MESandbox",
            dependencies: [
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The public HTTP API, configuration and wiring shared by the executable and the tests.
        .target(
            name: "PushbridgeServer",
            dependencies: [
                "Bridge", "Storage", "Workflow", "PushTokens", "MESandbox", "MobileEngage",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "pushbridge",
            dependencies: [
                "PushbridgeServer", "PushTokens", "MESandbox", "Storage",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ]
        ),
        .testTarget(name: "PushTokensTests", dependencies: ["PushTokens"], exclude: ["Vectors"]),
        .testTarget(name: "WorkflowTests", dependencies: ["Workflow", "MobileEngage"]),
        .testTarget(
            name: "StorageTests",
            dependencies: [
                "Storage", "Workflow", "PushbridgeServer",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ]
        ),
        .testTarget(
            name: "MESandboxTests",
            dependencies: [
                "MESandbox",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ]
        ),
        .testTarget(
            name: "PushbridgeTests",
            dependencies: [
                "PushbridgeServer", "MESandbox", "Storage", "Workflow", "PushTokens",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
