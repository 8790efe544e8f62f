import Bridge
import ConcurrencySupport
import Foundation
import Hummingbird
import Prometheus
import ServerSupport
import Storage
import Workflow

extension BridgeServer {
    /// The Prometheus text of `/metrics`, with the gauges read from storage and `process_*` refreshed first.
    ///
    /// Storage failing or stalled: the counters still scrape, the storage gauges keep their last values. A slow count
    /// over a large table is no failure: on SQLite it is waited for, on PostgreSQL up to storage.timeoutMs, and a
    /// timeout is not held against readiness.
    func scrapeText() async -> String {
        let store = self.store
        do {
            let read: @Sendable () async throws -> StoreOverview = { try await store.overview(app: nil, failures: 0) }
            let overview = try await withStorageTimeout(.milliseconds(configuration.storageTimeoutMs), on: store, read)
            Self.recordGauges(overview, apps: configuration.apps.map(\.code), metrics: metrics)
        } catch is StorageTimeout {
            metrics.storageError(operation: "metrics")
        } catch {
            health.failed("metrics", error)
        }
        processMetrics.update()
        return registry.emitToString()
    }

    /// `metrics.port`: `/metrics` alone, on its own port (the API's port then has none).
    func makeMetricsApplication() -> some ApplicationProtocol {
        let router = Router()
        router.get("/metrics") { [self] _, _ -> Response in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: await self.scrapeText())))
        }
        let portBox = metricsPortBox
        return Application(
            router: router,
            configuration: .init(address: .hostname(configuration.http.host, port: configuration.metrics.port ?? 0), serverName: "pushbridge-metrics"),
            onServerRunning: { channel in portBox.succeed(channel.localAddress?.port ?? 0) },
            logger: logger)
    }

    /// The port of `/metrics` when `metrics.port` is set, once it listens.
    public func metricsPort() async -> Int { (try? await metricsPortBox.value()) ?? 0 }
}

/// `process_*` as the Prometheus client libraries of other languages export them (Linux; none elsewhere).
final class ProcessMetrics: Sendable {
    private let cpu: Counter
    private let resident: Gauge
    private let virtual: Gauge
    private let openFds: Gauge
    private let maxFds: Gauge
    private let startTime: Gauge
    /// The CPU seconds already counted.
    private let counted = LockedValue(0.0)

    init(registry: PrometheusCollectorRegistry) {
        cpu = registry.makeCounter(name: "process_cpu_seconds_total", help: "Total user and system CPU time spent in seconds.")
        resident = registry.makeGauge(name: "process_resident_memory_bytes", help: "Resident memory size in bytes.")
        virtual = registry.makeGauge(name: "process_virtual_memory_bytes", help: "Virtual memory size in bytes.")
        openFds = registry.makeGauge(name: "process_open_fds", help: "Number of open file descriptors.")
        maxFds = registry.makeGauge(name: "process_max_fds", help: "Maximum number of open file descriptors.")
        startTime = registry.makeGauge(name: "process_start_time_seconds", help: "Start time of the process since unix epoch in seconds.")
        update()
    }

    func update() {
        guard let stats = ProcessStats.read() else { return }
        let delta = counted.update { counted -> Double in
            let delta = max(0, stats.cpuSeconds - counted)
            counted = max(counted, stats.cpuSeconds)
            return delta
        }
        if delta > 0 { cpu.increment(by: delta) }
        resident.set(to: stats.residentMemoryBytes)
        virtual.set(to: stats.virtualMemoryBytes)
        openFds.set(to: stats.openFileDescriptors)
        maxFds.set(to: stats.maxFileDescriptors)
        startTime.set(to: stats.startTimeSeconds)
    }
}
