import Foundation
import Metrics

/// The bridge's metrics, made from an explicit factory so each server (and each test) has its own
/// registry. Labels hold endpoints, outcomes, routes, states and app codes: never a token, a device
/// id or a contact value.
public struct BridgeMetrics: Sendable {
    public let factory: any MetricsFactory

    public init(factory: any MetricsFactory) {
        self.factory = factory
    }

    /// A factory that records nothing (tools and tests that do not look at metrics).
    public static var discarding: BridgeMetrics { BridgeMetrics(factory: NOOPMetricsHandler.instance) }

    public func meCall(endpoint: String, outcome: String) {
        Counter(label: "pushbridge_me_calls_total", dimensions: [("endpoint", endpoint), ("outcome", outcome)], factory: factory).increment()
    }

    public func meLatency(endpoint: String, _ duration: Duration) {
        Timer(label: "pushbridge_me_call_duration_seconds", dimensions: [("endpoint", endpoint)], preferredDisplayUnit: .seconds, factory: factory)
            .recordNanoseconds(Self.nanoseconds(duration))
    }

    static func nanoseconds(_ duration: Duration) -> Int64 {
        duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000
    }

    /// How long one of the engine's storage operations took (`operation`: claim, load, commit, commit_and_load,
    /// release): the database's share of a device's turn.
    public func storeLatency(operation: String, _ duration: Duration) {
        Timer(label: "pushbridge_store_operation_duration_seconds", dimensions: [("operation", operation)], preferredDisplayUnit: .seconds, factory: factory)
            .recordNanoseconds(Self.nanoseconds(duration))
    }

    /// A storage operation that failed (`operation`: accept, snapshot, list, overview, ready, claim, load, commit, ...).
    public func storageError(operation: String) {
        Counter(label: "pushbridge_storage_errors_total", dimensions: [("operation", operation)], factory: factory).increment()
    }

    public func contactTokenRefresh() {
        Counter(label: "pushbridge_contact_token_refreshes_total", factory: factory).increment()
    }

    public func relink() {
        Counter(label: "pushbridge_contact_relinks_total", factory: factory).increment()
    }

    public func tokenMove() {
        Counter(label: "pushbridge_token_moves_total", factory: factory).increment()
    }

    /// A token a backend reported dead was released by the device that held it.
    public func tokenInvalidated() {
        Counter(label: "pushbridge_tokens_invalidated_total", factory: factory).increment()
    }

    /// How long a step of `app`'s device waited for its turn under `apps[].meRequestsPerSecond` (zero when it did not).
    public func rateLimitWait(app: String, _ duration: Duration) {
        Timer(label: "pushbridge_me_rate_limit_wait_seconds", dimensions: [("app", app)], preferredDisplayUnit: .seconds, factory: factory)
            .recordNanoseconds(Self.nanoseconds(duration))
    }

    /// Devices the retention sweep acted on: `unregistered` (their token's removal queued) or `forgotten`.
    public func retention(_ action: String, _ count: Int) {
        Counter(label: "pushbridge_retention_devices_total", dimensions: [("action", action)], factory: factory).increment(by: Int64(count))
    }

    /// One webhook delivery attempt: `delivered` (2xx), `failed` (tried again later) or `given_up`.
    public func webhookDelivery(outcome: String) {
        Counter(label: "pushbridge_webhook_deliveries_total", dimensions: [("outcome", outcome)], factory: factory).increment()
    }

    /// A write with an `Idempotency-Key` that was not answered afresh: `replayed`, `in_progress` (409), `reused` (422).
    public func idempotentRequest(_ outcome: String) {
        Counter(label: "pushbridge_idempotent_requests_total", dimensions: [("outcome", outcome)], factory: factory).increment()
    }

    /// History entries dropped: the recorder's buffer was full, or their batch could not be written.
    public func historyDropped(_ count: Int = 1) {
        Counter(label: "pushbridge_history_entries_dropped_total", factory: factory).increment(by: Int64(count))
    }

    public func apiRequest(route: String, method: String, status: Int) {
        Counter(label: "pushbridge_http_requests_total", dimensions: [("route", route), ("method", method), ("status", String(status))], factory: factory).increment()
    }

    /// How long the API took to answer a request, by route pattern and method.
    public func apiLatency(route: String, method: String, _ duration: Duration) {
        Timer(label: "pushbridge_http_request_duration_seconds", dimensions: [("route", route), ("method", method)], preferredDisplayUnit: .seconds, factory: factory)
            .recordNanoseconds(Self.nanoseconds(duration))
    }

    public func gauge(_ label: String, _ dimensions: [(String, String)] = [], _ value: Double) {
        Gauge(label: label, dimensions: dimensions, factory: factory).record(value)
    }
}
