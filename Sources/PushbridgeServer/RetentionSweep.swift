import Bridge
import ConcurrencySupport
import Foundation
import Logging
import PushbridgeConfig
import ServiceLifecycle
import Storage
import Workflow

/// Applies `apps[].retention`: devices no backend wrote for in `forgetAfter` are forgotten as by `DELETE`, those not
/// seen in `unregisterAfter` have their token removed at ME (ending `unregistered`, webhook reason `expired`).
///
/// It only queues that work; the engine sends it, in each device's order and at the app's pace toward ME. What was
/// queued is marked on the device (`expiry`), so a restart goes on where the last round stopped and no device is
/// queued twice. It runs in rounds (every quarter of the shortest duration, between 1 and 60 seconds), each in batches
/// of `batch` devices with `pause` between them, so that a fleet that went stale at once is queued gradually. On
/// PostgreSQL a batch holds the app's sweep lock: one instance at a time sweeps an app, the others skip it.
final class RetentionSweep: Service, Sendable {
    struct Rule: Sendable {
        var app: String
        var policy: AppPolicy
        var retention: BridgeConfiguration.Retention
    }

    private let store: any DeviceStore
    private let rules: [Rule]
    private let limits: QueueLimits
    private let wake: @Sendable () -> Void
    /// Writes the sightings of deduplicated writes still waiting in this instance, before each round; false when that
    /// failed (the round is skipped: a device seen a moment ago would be taken for stale).
    private let flushSeen: @Sendable () async -> Bool
    private let metrics: BridgeMetrics
    private let logger: Logger
    private let batch: Int
    private let pause: Duration
    private let running = LockedValue(true)
    private let signal = Signal()

    init(
        store: any DeviceStore, rules: [Rule], limits: QueueLimits, wake: @escaping @Sendable () -> Void,
        flushSeen: @escaping @Sendable () async -> Bool = { true }, metrics: BridgeMetrics, logger: Logger, batch: Int = 100,
        pause: Duration = .milliseconds(100)
    ) {
        self.flushSeen = flushSeen
        self.store = store
        self.rules = rules.filter { !$0.retention.isOff }
        self.limits = limits
        self.wake = wake
        self.metrics = metrics
        self.logger = logger
        self.batch = batch
        self.pause = pause
    }

    /// The rules of a configuration: the apps with a retention.
    static func rules(_ configuration: BridgeConfiguration) -> [Rule] {
        configuration.apps.filter { !$0.retention.isOff }.map {
            Rule(app: $0.code, policy: $0.policy(eventsAPIVersion: configuration.emarsys.eventsAPIVersion), retention: $0.retention)
        }
    }

    /// A quarter of the shortest duration, between 1 and 60 seconds: a device is acted on at most that late.
    var interval: Duration {
        let shortest = rules.flatMap { [$0.retention.unregisterAfter, $0.retention.forgetAfter].compactMap { $0 } }.min() ?? 240
        return .milliseconds(Int64(min(60, max(1, shortest / 4)) * 1000))
    }

    func run() async throws {
        // A service that returns ends the group: with nothing to sweep it waits for the shutdown.
        guard !rules.isEmpty else { return try await gracefulShutdown() }
        await withGracefulShutdownHandler {
            while running.get() {
                await round()
                await signal.wait(timeout: interval)
            }
        } onGracefulShutdown: {
            self.running.set(false)
            self.signal.notify()
        }
    }

    /// One pass over every app: forgetting first (a device due for both is only forgotten), then the expiry.
    func round() async {
        guard await flushSeen() else {
            logger.warning("the retention sweep skips a round: this instance's latest sightings could not be written")
            return
        }
        for rule in rules {
            if let after = rule.retention.forgetAfter {
                await sweep(rule.app, action: "forgotten") { [store, limits, batch] now in
                    try await store.forgetDevices(
                        app: rule.app, seenBefore: now.addingTimeInterval(-after), policy: rule.policy, limits: limits, limit: batch, now: now)
                }
            }
            if let after = rule.retention.unregisterAfter {
                await sweep(rule.app, action: "unregistered") { [store, batch] now in
                    try await store.expireDevices(app: rule.app, seenBefore: now.addingTimeInterval(-after), limit: batch, now: now)
                }
            }
        }
    }

    /// Batches until one comes back short (or another instance holds the app's sweep, or shutdown).
    private func sweep(_ app: String, action: String, _ step: @Sendable (Date) async throws -> RetentionBatch) async {
        while running.get() {
            let done: RetentionBatch
            do {
                done = try await step(Date())
            } catch {
                logger.warning("the retention sweep failed; it tries again next round", metadata: [
                    "app": "\(app)", "action": "\(action)", "error": "\(storageErrorText(error))",
                ])
                return
            }
            if !done.devices.isEmpty {
                metrics.retention(action, done.devices.count)
                logger.info("retention: devices not seen for too long", metadata: ["app": "\(app)", "action": "\(action)", "devices": "\(done.devices.count)"])
                wake()
            }
            guard !done.busy, done.examined >= batch else { return }
            await signal.wait(timeout: pause)
        }
    }
}
