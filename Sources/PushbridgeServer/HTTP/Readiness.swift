import Foundation
import Storage

/// `/ready`: storage answers and the workers run.
final class Readiness: Sendable {
    private let engineRunning: @Sendable () -> Bool

    init(engineRunning: @escaping @Sendable () -> Bool) {
        self.engineRunning = engineRunning
    }

    struct Report: Encodable {
        var ready: Bool
        var status: String
        var checks: [String: String]
    }

    func check(store: any DeviceStore) async -> Report {
        var checks: [String: String] = [:]
        do {
            try await store.ping()
            checks["storage"] = "ok"
        } catch {
            checks["storage"] = "not answering"
        }
        checks["workers"] = engineRunning() ? "ok" : "not running"
        let ready = checks.values.allSatisfy { $0 == "ok" }
        return Report(ready: ready, status: ready ? "ready" : "not ready", checks: checks)
    }
}
