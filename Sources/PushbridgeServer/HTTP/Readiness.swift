import Bridge
import Foundation
import PushbridgeConfig
import Storage

/// `/ready`: storage reads and writes, and the workers run. Answers within a second, whatever storage does.
final class Readiness: Sendable {
    private let engineRunning: @Sendable () -> Bool
    private let draining: @Sendable () -> Bool
    private let limits: BridgeConfiguration.QueueLimitsConfig
    private let health: StorageHealth
    /// Whether the webhook outbox is at its bound (nil: no endpoint is configured).
    private let webhooksFull: @Sendable () -> Bool?

    /// How long the storage checks may take together: a probe must read 503, not time out.
    static let storageDeadline = Duration.milliseconds(700)
    /// A storage operation that failed this recently (the API's, the engine's, the probe's) keeps `/ready` at 503.
    static let failureWindow = Duration.seconds(5)

    init(
        engineRunning: @escaping @Sendable () -> Bool, draining: @escaping @Sendable () -> Bool,
        limits: BridgeConfiguration.QueueLimitsConfig, health: StorageHealth, webhooksFull: @escaping @Sendable () -> Bool? = { nil }
    ) {
        self.webhooksFull = webhooksFull
        self.engineRunning = engineRunning
        self.draining = draining
        self.limits = limits
        self.health = health
    }

    struct Report: Encodable {
        var ready: Bool
        var status: String
        var checks: [String: String]
    }

    func check(store: any DeviceStore) async -> Report {
        var checks: [String: String] = [:]
        do {
            // A read (the queue's bound) and a probe write, both within the deadline: a full disk or a read-only
            // file still reads, and a database that is down must not hold the probe.
            // SQLite answers or fails by itself (a full disk, a read-only file fail at once); a busy writer is no
            // reason to take the instance out of service. A store that can stall gets the deadline.
            let probe: @Sendable () async throws -> (total: Int, perApp: [String: Int]) = {
                let queued = try await store.queuedIntents()
                try await store.ping()
                return queued
            }
            let queued = try await withStorageTimeout(Self.storageDeadline, on: store, probe)
            if let failure = health.failure(within: Self.failureWindow) {
                checks["storage"] = "failing (\(failure.operation))"
            } else {
                checks["storage"] = "ok"
            }
            let overApp = queued.perApp.contains { $0.value >= limits.maxQueuedIntentsPerApp }
            checks["queue"] = queued.total >= limits.maxQueuedIntents || overApp ? "at its bound" : "ok"
        } catch is StorageTimeout {
            // Not ready now; not held against the next probe either (a busy moment is no outage). A recent failure
            // says more than the timeout.
            checks["storage"] = health.failure(within: Self.failureWindow).map { "failing (\($0.operation))" } ?? "not answering"
        } catch {
            health.failed("ready", error)
            checks["storage"] = "failing (ready)"  // the read or the probe write
        }
        checks["workers"] = engineRunning() ? "ok" : "not running"
        if draining() { checks["shutdown"] = "draining" }
        let ready = checks.values.allSatisfy { $0 == "ok" }
        // Said, not held against readiness: an endpoint that is down must not take the API out of service.
        if let full = webhooksFull() { checks["webhooks"] = full ? "backlog full" : "ok" }
        return Report(ready: ready, status: ready ? "ready" : "not ready", checks: checks)
    }
}
