import AsyncHTTPClient
import Bridge
import ConcurrencySupport
import Crypto
import Foundation
import Logging
import MobileEngage
import NIOCore
import PushbridgeConfig
import ServiceLifecycle
import Storage
import Webhooks
import Workflow

/// One configured receiver of one app's device events.
struct WebhookTarget: Sendable {
    /// Stable across restarts (rows in the outbox name it): a hash of the app code and the URL.
    let id: String
    let app: String
    let url: String
    let secret: WebhookSecret
    let events: Set<String>

    init(app: String, _ webhook: BridgeConfiguration.Webhook) {
        self.app = app
        url = webhook.url
        secret = webhook.secret
        events = Set((webhook.events ?? Set(WebhookEvent.allCases)).map(\.rawValue))
        id = Self.id(app: app, url: webhook.url)
    }

    static func id(app: String, url: String) -> String {
        SHA256.hash(data: Data((app + "\n" + url).utf8)).prefix(8).map { String(format: "%02x", $0) }.joined()
    }

    /// Every app's targets, and what the engine's commits need of them.
    static func all(_ configuration: BridgeConfiguration) -> [WebhookTarget] {
        configuration.apps.flatMap { app in app.webhooks.map { WebhookTarget(app: app.code, $0) } }
    }

    static func routing(_ targets: [WebhookTarget]) -> [String: [WebhookRouting.Endpoint]] {
        Dictionary(grouping: targets, by: \.app).mapValues { $0.map { WebhookRouting.Endpoint(id: $0.id, events: $0.events) } }
    }
}

/// Delivers the webhook outbox: per endpoint a loop claims the oldest due message of each device and POSTs it, signed
/// per Standard Webhooks, at most `perEndpoint` at a time, so a slow or dead endpoint holds back only itself. It has
/// its own HTTP client: it never takes a connection or a worker from the engine's ME calls.
final class WebhookDelivery: Service, Sendable {
    struct Settings: Sendable {
        var timeout: Duration
        var retry: WebhookRetry
        /// How long one storage operation may take (`storage.timeoutMs`): a query on a connection that died with
        /// the database must not hold an endpoint's loop or its slots.
        var storageTimeout: Duration = .seconds(5)
        var perEndpoint: Int = 16
        var maxBacklog: Int
        /// How often an idle endpoint looks for due messages (a commit does not wake it).
        var poll: Duration = .milliseconds(250)
    }

    private let store: any DeviceStore
    private let targets: [WebhookTarget]
    private let http: HTTPClient
    private let settings: Settings
    private let backlogFull: LockedValue<Set<String>>
    private let metrics: BridgeMetrics
    private let logger: Logger
    private let owner: String
    private let history: @Sendable (HistoryRecord) -> Void
    private let running = LockedValue(true)
    private let stopped = Signal()

    init(
        store: any DeviceStore, targets: [WebhookTarget], http: HTTPClient, settings: Settings, backlogFull: LockedValue<Set<String>>,
        metrics: BridgeMetrics, logger: Logger, owner: String, history: @escaping @Sendable (HistoryRecord) -> Void = { _ in }
    ) {
        self.history = history
        self.store = store
        self.targets = targets
        self.http = http
        self.settings = settings
        self.backlogFull = backlogFull
        self.metrics = metrics
        self.logger = logger
        self.owner = owner + "-webhooks"
    }

    /// Whether the outbox is at its bound; nil when no endpoint is configured.
    var backlogFullNow: Bool? { targets.isEmpty ? nil : !backlogFull.get().isEmpty }

    /// One storage operation, given up after `storageTimeout`.
    private func storage<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T {
        try await withStorageTimeout(settings.storageTimeout, on: store, body)
    }

    /// Drops the messages of endpoints no longer configured, once older than the maximum age (younger ones may
    /// be another instance's, during a rolling change of the configuration).
    private func dropUnconfigured() async {
        let keep = Set(targets.map(\.id))
        let before = Date().addingTimeInterval(-Double(settings.retry.maxAgeMs) / 1000)
        do {
            let dropped = try await storage { [store] in try await store.dropWebhooks(keeping: keep, madeBefore: before) }
            if dropped > 0 {
                logger.warning("dropped the webhook messages of endpoints no longer configured", metadata: ["messages": "\(dropped)"])
            }
        } catch {
            logger.warning("could not drop the messages of removed webhook endpoints", metadata: ["error": "\(storageErrorText(error))"])
        }
    }

    func run() async throws {
        // Messages for endpoints no longer configured would wait forever: dropped, and said so.
        await dropUnconfigured()
        guard !targets.isEmpty else {
            // A service that returns ends the whole group: with no endpoint it waits for the shutdown.
            try? await gracefulShutdown()
            return
        }
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                for target in targets {
                    group.addTask { await self.deliverLoop(target) }
                }
                group.addTask { await self.backlogLoop() }
            }
        } onGracefulShutdown: {
            self.running.set(false)
            self.stopped.notify()
        }
    }

    /// Claims and delivers `target`'s due messages until shutdown; a finished delivery frees a slot at once.
    private func deliverLoop(_ target: WebhookTarget) async {
        let inFlight = LockedValue(0)
        let slotFreed = Signal()
        // A claim's lease outlasts an attempt (its timeout) and the settling after it.
        let lease = settings.timeout * 2 + .seconds(10)
        await withDiscardingTaskGroup { group in
            while running.get() {
                let free = settings.perEndpoint - inFlight.get()
                var claimed: [(OutboxMessage, String)] = []
                if free > 0 {
                    do {
                        // A holder name per claim: a settle that comes late, after its lease ran out and this instance
                        // claimed the message again, changes nothing.
                        let holder = owner + "-" + UUID().uuidString.prefix(8)
                        claimed = try await storage { [store] in
                            try await store.claimWebhooks(endpoint: target.id, now: Date(), limit: free, owner: holder, lease: lease)
                        }.map { ($0, holder) }
                    } catch {
                        logger.warning("claiming webhook messages failed", metadata: ["error": "\(storageErrorText(error))"])
                    }
                }
                for (message, holder) in claimed {
                    inFlight.update { $0 += 1 }
                    group.addTask {
                        await self.deliver(message, to: target, holder: holder)
                        inFlight.update { $0 -= 1 }
                        slotFreed.notify()
                    }
                }
                if claimed.count < free || free == 0 {
                    // Nothing more due now: look again after a while, or when a slot frees (its device's next
                    // message may be due).
                    await slotFreed.wait(timeout: settings.poll)
                }
            }
        }
    }

    /// One attempt: POST, then record the outcome (a settle that fails leaves the lease to run out: the message is
    /// delivered again, with the same id).
    private func deliver(_ message: OutboxMessage, to target: WebhookTarget, holder: String) async {
        let body = WebhookBody.render(message)
        let timestamp = Int64(Date().timeIntervalSince1970)
        var request = HTTPClientRequest(url: target.url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "User-Agent", value: "pushbridge")
        for (name, value) in StandardWebhooks.headers(id: message.msgId, timestamp: timestamp, body: body, secret: target.secret) {
            request.headers.add(name: name, value: value)
        }
        request.body = .bytes(ByteBuffer(bytes: body))
        var status: Int?
        var retryAfterSeconds: Double?
        do {
            let response = try await http.execute(request, timeout: .nanoseconds(settings.timeout.nanoseconds))
            status = Int(response.status.code)
            retryAfterSeconds = MEWireFormat.retryAfterSeconds(response.headers.first(name: "Retry-After"), now: Date())
            _ = try? await response.body.collect(upTo: 64 * 1024)
        } catch {
            status = nil  // a timeout, a refused or broken connection
        }
        let now = Date()
        history(HistoryRecord(key: message.key, at: now, entry: .webhook(event: message.event, status: status, attempt: message.attempts + 1)))
        let settlement: OutboxSettlement
        if let status, (200..<300).contains(status) {
            settlement = .delivered
            metrics.webhookDelivery(outcome: "delivered")
        } else {
            switch settings.retry.after(
                attempts: message.attempts + 1, createdAtMs: message.occurredAt.epochMs, nowMs: now.epochMs,
                retryAfterMs: retryAfterSeconds.map { Int64($0 * 1000) }, jitter: Double.random(in: 0..<1)
            ) {
            case .retry(let atMs):
                settlement = .retry(at: Date(timeIntervalSince1970: Double(atMs) / 1000), status: status)
                metrics.webhookDelivery(outcome: "failed")
            case .giveUp:
                settlement = .givenUp
                metrics.webhookDelivery(outcome: "given_up")
                logger.warning("webhook message given up", metadata: [
                    "app": "\(message.key.appCode)", "device": "\(message.key.deviceId)", "webhookId": "\(message.msgId)",
                    "event": "\(message.event)", "endpoint": "\(target.id)", "attempts": "\(message.attempts + 1)",
                    "status": "\(status.map(String.init) ?? "network")",
                ])
            }
        }
        do {
            try await storage { [store] in try await store.settleWebhook(id: message.id, owner: holder, settlement) }
        } catch {
            logger.warning("recording a webhook attempt failed; the message goes again when its lease ends",
                metadata: ["webhookId": "\(message.msgId)", "error": "\(storageErrorText(error))"])
        }
    }

    /// The backlog gauges, and the bound: at `maxBacklog` messages the engine stops writing new ones.
    private func backlogLoop() async {
        var lastDrop = ContinuousClock.now
        while running.get() {
            do {
                let backlog = try await storage { [store] in try await store.webhookBacklog() }
                // Each endpoint has its own bound: one that is down fills only its own part.
                let full = Set(backlog.perEndpoint.filter { $0.value >= settings.maxBacklog }.keys)
                let before = backlogFull.get()
                if full != before {
                    backlogFull.set(full)
                    for endpoint in full.subtracting(before) {
                        logger.error("webhook outbox of an endpoint full: its new messages are dropped until it drains",
                            metadata: ["endpoint": "\(endpoint)", "messages": "\(backlog.perEndpoint[endpoint] ?? 0)"])
                    }
                    for endpoint in before.subtracting(full) {
                        logger.notice("webhook outbox of an endpoint below its bound again", metadata: ["endpoint": "\(endpoint)"])
                    }
                }
                metrics.gauge("pushbridge_webhook_backlog", [], Double(backlog.count))
                metrics.gauge("pushbridge_webhook_backlog_full", [], Double(full.count))
                metrics.gauge("pushbridge_webhook_oldest_age_seconds", [], backlog.oldest.map { max(0, -$0.timeIntervalSinceNow) } ?? 0)
            } catch {
                metrics.storageError(operation: "webhook_backlog")
            }
            if ContinuousClock.now - lastDrop > .seconds(60) {
                lastDrop = .now
                await dropUnconfigured()
            }
            await stopped.wait(timeout: .seconds(1))
        }
    }
}

/// The body of a message: `{"type", "timestamp", "data"}`, the same bytes on every attempt (the signature covers
/// them, and receivers tell retries apart by `webhook-id`). `data` is the device status as `GET` returns it (no
/// `deduplicated`), with the `reason` of a `device.unregistered`; for `device.deleted`, the app code and device id.
enum WebhookBody {
    static func render(_ message: OutboxMessage) -> [UInt8] {
        var o = JSONOut()
        o.raw("{\"type\":")
        o.string(message.event)
        o.raw(",\"timestamp\":")
        o.string(Timestamp.iso(message.occurredAt))
        o.raw(",\"data\":")
        if let snapshot = message.snapshot {
            DeviceStatus(snapshot).write(to: &o)
            if let reason = message.reason, message.event == WebhookEvent.unregistered.rawValue {
                // The status object's closing brace gives way to the reason.
                o.bytes.removeLast()
                o.raw(",\"reason\":")
                o.string(reason)
                o.raw("}")
            }
        } else {
            o.raw("{\"appCode\":")
            o.string(message.key.appCode)
            o.raw(",\"deviceId\":")
            o.string(message.key.deviceId)
            o.raw("}")
        }
        o.raw("}")
        return o.bytes
    }
}

extension Duration {
    var nanoseconds: Int64 {
        let (s, atto) = components
        return s * 1_000_000_000 + atto / 1_000_000_000
    }
}

extension Date {
    var epochMs: Int64 { Int64((timeIntervalSince1970 * 1000).rounded(.down)) }
}
