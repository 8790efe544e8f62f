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
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
    ],
    targets: [
        // Push token plugins: parse, validate, canonicalise, hash. No I/O.
        .target(
            name: "PushTokens",
            dependencies: [.product(name: "Crypto", package: "swift-crypto")]
        ),
        // Small concurrency helpers shared by the modules: a value behind a mutex, a one-shot result to await.
        .target(name: "ConcurrencySupport"),
        // The Mobile Engage v3 wire model: calls, routes, headers, bodies, answers. Pure values, Foundation only.
        .target(name: "MobileEngage"),
        // The ME client: sends `MECall`s over AsyncHTTPClient and classifies the answers.
        .target(
            name: "MobileEngageClient",
            dependencies: [
                "MobileEngage", "ConcurrencySupport",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        // Telling backends: Standard Webhooks signing, the events and their retry policy. Pure values, Crypto only.
        .target(
            name: "Webhooks",
            dependencies: [.product(name: "Crypto", package: "swift-crypto")]
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
                "Workflow", "MobileEngage", "ConcurrencySupport",
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
                "Workflow", "Storage", "MobileEngage", "MobileEngageClient", "ConcurrencySupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        // The faithful local Mobile Engage backend.
        .target(
            name: "MESandbox",
            dependencies: [
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Process infrastructure the server and the executable share: log handlers, the event-loop task executor.
        .target(
            name: "ServerSupport",
            dependencies: [
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        // The command-line tools' logic (`import`, `status`): clients of the HTTP API and readers of the store, which
        // write the API's documents (PushbridgeServer) when they read the store.
        .target(
            name: "PushbridgeTools",
            dependencies: [
                "Storage", "Workflow", "PushbridgeServer",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
            ]
        ),
        // The configuration: the YAML file and the environment, validated; the bridge's version.
        .target(
            name: "PushbridgeConfig",
            dependencies: [
                "Workflow", "MobileEngage", "Webhooks",
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "Yams", package: "Yams"),
            ]
        ),
        // The public HTTP API and the wiring shared by the executable and the tests.
        .target(
            name: "PushbridgeServer",
            dependencies: [
                "Bridge", "Storage", "Workflow", "PushTokens", "MESandbox", "MobileEngage", "MobileEngageClient", "ServerSupport", "ConcurrencySupport", "PushbridgeConfig", "Webhooks",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "pushbridge",
            dependencies: [
                "PushbridgeServer", "PushbridgeTools", "PushbridgeConfig", "ServerSupport", "PushTokens", "MESandbox", "Storage",
                "Workflow",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ]
        ),
        // What several test targets share (the seeded generator, random workflow values), as NIO keeps its test
        // utilities in a module.
        .target(name: "TestSupport", dependencies: ["Workflow", "MobileEngage"], path: "Tests/TestSupport"),
        .testTarget(
            name: "PushTokensTests",
            dependencies: ["PushTokens", "TestSupport", .product(name: "Crypto", package: "swift-crypto")],
            exclude: ["Vectors"]
        ),
        .testTarget(name: "WorkflowTests", dependencies: ["Workflow", "MobileEngage", "TestSupport"]),
        .testTarget(name: "WebhooksTests", dependencies: ["Webhooks", .product(name: "Crypto", package: "swift-crypto")]),
        .testTarget(name: "BridgeTests", dependencies: ["Bridge", "Storage", "Workflow", "MobileEngage", "ConcurrencySupport"]),
        .testTarget(
            name: "StorageTests",
            dependencies: [
                "Storage", "Workflow", "MobileEngage", "TestSupport", "ServerSupport",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ]
        ),
        .testTarget(
            name: "MESandboxTests",
            dependencies: [
                "MESandbox",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            exclude: ["Vectors"]
        ),
        .testTarget(
            name: "PushbridgeTests",
            dependencies: [
                "PushbridgeServer", "PushbridgeTools", "ServerSupport", "MESandbox", "Storage", "Workflow", "MobileEngage", "TestSupport",
                "ConcurrencySupport", "PushbridgeConfig", "Webhooks",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
