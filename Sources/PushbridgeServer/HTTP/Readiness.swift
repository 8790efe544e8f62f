import Foundation
import PushbridgeConfig
import Storage

/// `/ready`: storage answers and the workers run.
final class Readiness: Sendable {
    private let engineRunning: @Sendable () -> Bool
    private let draining: @Sendable () -> Bool
    private let limits: BridgeConfiguration.QueueLimitsConfig

    init(engineRunning: @escaping @Sendable () -> Bool, draining: @escaping @Sendable () -> Bool, limits: BridgeConfiguration.QueueLimitsConfig) {
        self.engineRunning = engineRunning
        self.draining = draining
        self.limits = limits
    }

    struct Report: Encodable {
        var ready: Bool
        var status: String
        var checks: [String: String]
    }

    func check(store: any DeviceStore) async -> Report {
        var checks: [String: String] = [:]
        do {
            let queued = try await store.queuedIntents()
            checks["storage"] = "ok"
            let overApp = queued.perApp.contains { $0.value >= limits.maxQueuedIntentsPerApp }
            checks["queue"] = queued.total >= limits.maxQueuedIntents || overApp ? "at its bound" : "ok"
        } catch {
            checks["storage"] = "not answering"
        }
        checks["workers"] = engineRunning() ? "ok" : "not running"
        if draining() { checks["shutdown"] = "draining" }
        let ready = checks.values.allSatisfy { $0 == "ok" }
        return Report(ready: ready, status: ready ? "ready" : "not ready", checks: checks)
    }
}
