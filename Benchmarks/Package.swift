// swift-tools-version: 6.1
// Benchmarks for the PushTokens library, kept in their own package so the service build and its
// tests never compile the benchmark tooling. Run: `swift package --disable-sandbox benchmark`.
import PackageDescription

let package = Package(
    name: "PushTokensBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "pushbridge", path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark.git", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "PushTokensBenchmarks",
            dependencies: [
                .product(name: "PushTokens", package: "pushbridge"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/PushTokensBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ],
    swiftLanguageModes: [.v6]
)
