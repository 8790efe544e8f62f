import ConcurrencySupport
import Foundation
import Storage
import Workflow

/// What the engine needs to know; the executable fills it from the configuration file.
public struct EngineConfiguration: Sendable {
    /// A bound on ME requests in flight across all devices; also the number of workers.
    public var maxConcurrentRequests: Int
    public var retry: RetryPolicy
    public var apps: [String: AppPolicy]
    /// The version the bridge reports as `sdkVersion` and `X-EMARSYS-SDK-VERSION`.
    public var sdkVersion: String
    /// Steps a worker runs for one device before it lets others go first.
    public var maxStepsPerTurn: Int
    /// How long a claimed device stays with this instance without a renewal: each commit renews it, and while a
    /// worker has the device a heartbeat renews it every third of it.
    public var lease: Duration
    /// This instance's stable name (`instance.id`): its lease owners are `<instanceId>/<run>`, and a new run gives
    /// back the leases of the earlier ones at start. Two instances running at once must not share it.
    public var instanceId: String
    /// The pause between a successful contact-token refresh and the replay (the SDKs wait 500 ms).
    public var refreshReplayDelayMs: Int
    /// How long one storage operation may take before the engine stops waiting for it and tries again
    /// (`storage.timeoutMs`): a query on a connection that died with the database must not hold a worker.
    public var storageTimeout: Duration
    /// Each app's webhook endpoints (by app code): the commits that change what backends heard of a device write
    /// one outbox message per endpoint that takes the event. Apps left out have none.
    public var webhooks: [String: [WebhookRouting.Endpoint]] = [:]
    /// The endpoints whose outbox is at its bound (`webhooks.maxBacklog`): no new message is written for them, and
    /// what backends heard still moves on (`pushbridge_webhook_backlog_full`, `/ready`). Other endpoints go on.
    public var webhookBacklogFull = LockedValue<Set<String>>([])
    /// Where each ME call is told, for the device's history (nil: not kept).
    public var history: (@Sendable (HistoryRecord) -> Void)?
    /// Each app's ceiling toward ME (`apps[].meRequestsPerSecond`); shared with nothing else in the instance.
    public var rateLimiter = RateLimiter(rates: [:])

    public init(
        maxConcurrentRequests: Int = 64, retry: RetryPolicy = .init(), apps: [String: AppPolicy], sdkVersion: String,
        maxStepsPerTurn: Int = 16, lease: Duration = .seconds(10), refreshReplayDelayMs: Int = 500,
        storageTimeout: Duration = .seconds(5), instanceId: String = "\(ProcessInfo.processInfo.hostName):\(UUID().uuidString.prefix(8))"
    ) {
        self.instanceId = instanceId
        self.storageTimeout = storageTimeout
        self.refreshReplayDelayMs = refreshReplayDelayMs
        self.maxConcurrentRequests = max(1, maxConcurrentRequests)
        self.retry = retry
        self.apps = apps
        self.sdkVersion = sdkVersion
        self.maxStepsPerTurn = maxStepsPerTurn
        self.lease = lease
    }
}
