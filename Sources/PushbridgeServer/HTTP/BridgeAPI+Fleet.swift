import Foundation
import Hummingbird
import Storage

/// Operations on many devices of an app at once.
extension BridgeAPI {
    /// The steps a failed device can have failed in (`lastError.step`).
    static let failedSteps: Set<String> = ["client", "contact", "refresh", "event", "push-token", "push-token-removal"]

    /// `POST /v1/apps/{code}/devices/retry` with `{"state": "failed", "step"?}`: every failed device of the app (whose
    /// failed step is `step`, when given) retries that step with a fresh budget, as a new intent would make it. 202
    /// `{"devices": N}`. The engine sends the retries at the app's pace (`apps[].meRequestsPerSecond`).
    func retryDevices(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        let app = try self.app(request, context)
        let body = Members(try await JSONInput.body(request))
        guard try body.string("state", required: true) == "failed" else {
            throw Problem.invalid("state", "state must be \"failed\": only failed devices are retried.")
        }
        let step = try body.string("step")
        if let step, !Self.failedSteps.contains(step) {
            throw Problem.invalid("step", "step must be one of \(Self.failedSteps.sorted().joined(separator: ", ")).")
        }
        try refuseWhileDraining()
        let now = Date()
        let woken = try await storage("retry") { [store] in try await store.retryFailed(app: app.code, step: step, now: now) }
        if woken > 0 { wake() }
        logger.info("failed devices retried", metadata: ["app": "\(app.code)", "step": "\(step ?? "any")", "devices": "\(woken)"])
        return try Self.json(["devices": woken], status: .accepted)
    }
}
