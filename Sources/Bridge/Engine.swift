import ConcurrencySupport
import Foundation
import Logging
import Metrics
import MobileEngage
import MobileEngageClient
import ServiceLifecycle
import Storage
import Workflow

/// The running engine: a dispatcher leases devices with due work from storage and hands them to
/// workers; a worker runs one device's steps in order, one ME request in flight per device.
///
/// It wakes at once when the API queues work (`wake()`), and otherwise sleeps until the earliest
/// due time (backoff), so the happy path has no polling delay. Everything it needs to go on after
/// a restart is in storage.
public final class Engine: Service, Sendable {
    let store: any DeviceStore
    let me: MEClient
    let config: EngineConfiguration
    let logger: Logger
    private let signal = Signal()
    private let queue = WorkQueue<DeviceKey>()
    let running = LockedValue(false)
    /// Leases this instance may hold with no worker on them: a claim whose answer was lost (it may have committed all
    /// the same), or a storage operation given up on that ended later (a claim sent before its time ran out commits
    /// after it). The dispatcher gives them back before its next claim.
    private let orphanedLeases = LockedValue(false)
    private let startGate: (@Sendable () async -> Void)?
    private let metrics: BridgeMetrics
    private let health: StorageHealth
    public let owner: String

    /// - Parameters:
    ///   - health: where failed storage operations are reported (readiness reads it).
    ///   - startGate: awaited before the first step (the embedded sandbox must be listening).
    public init(
        store: any DeviceStore, me: MEClient, configuration: EngineConfiguration, logger: Logger,
        metrics: BridgeMetrics = .discarding, health: StorageHealth? = nil, startGate: (@Sendable () async -> Void)? = nil
    ) {
        self.startGate = startGate
        self.metrics = metrics
        self.health = health ?? StorageHealth(metrics: metrics)
        self.store = store
        self.me = me
        self.config = configuration
        self.logger = logger
        self.owner = "\(configuration.instanceId)/\(ProcessInfo.processInfo.processIdentifier)-\(UUID().uuidString.prefix(8))"
    }

    /// When each device a worker has was last known to be leased to this instance (its claim, its commits, the
    /// heartbeat's renewals).
    let renewed = LockedValue<[DeviceKey: ContinuousClock.Instant]>([:])

    /// How long after a storage failure the dispatcher keeps looking for due devices at least every second.
    static let afterStorageFailure = Duration.seconds(10)

    /// New work was queued: look for due devices now.
    public func wake() {
        signal.notify()
    }

    /// Whether the dispatcher and workers run (readiness).
    public var isRunning: Bool { running.get() }

    public func run() async throws {
        await startGate?()
        await releaseEarlierRunsLeases()
        running.set(true)
        defer { running.set(false) }
        try await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { group in
                for _ in 0..<config.maxConcurrentRequests {
                    group.addTask { await self.workerLoop() }
                }
                group.addTask { await self.heartbeatLoop() }
                await self.dispatchLoop()
                await self.queue.close()
            }
        } onGracefulShutdown: {
            self.running.set(false)
            self.signal.notify()
        }
    }

    private func dispatchLoop() async {
        // A claim that failed may have committed all the same (its answer lost with the connection, or not waited
        // for): the devices it leased are given back before the next claim, all but the ones in hand.
        while running.get() && !Task.isCancelled {
            let free = config.maxConcurrentRequests - (await queue.load)
            if orphanedLeases.get() {
                do {
                    orphanedLeases.set(false)
                    let inHand = await queue.held
                    let given = try await timed("release_orphans") { [store, owner] in try await store.releaseLeases(owner: owner, except: inHand) }
                    if given > 0 { logger.notice("gave back the leases of a claim whose answer was lost", metadata: ["devices": "\(given)"]) }
                } catch {
                    orphanedLeases.set(true)
                    await signal.wait(timeout: .seconds(1))
                    continue
                }
            }
            if free > 0 {
                do {
                    // Not the devices workers still have: their releases may still be on the way.
                    let inHand = await queue.held
                    let keys = try await timed("claim") { [store, owner, config] in
                        try await store.claimDue(now: Date(), limit: free, owner: owner, lease: config.lease, except: inHand)
                    }
                    // Were one returned all the same, it would not go to a second worker (see WorkQueue).
                    if !keys.isEmpty {
                        await queue.push(keys)
                        continue
                    }
                } catch {
                    orphanedLeases.set(true)
                    logger.error("claiming due devices failed", metadata: ["error": "\(storageErrorText(error))"])
                    await signal.wait(timeout: .seconds(1))
                    continue
                }
            }
            var timeout = Duration.seconds(5)
            if free > 0 {
                do {
                    if let next = try await timed("next_due", { [store] in try await store.nextDueAt() }) {
                        var ms = max(1, Int64(next.timeIntervalSinceNow * 1000) + 1)
                        // Due already, yet the claim took nothing: a device a worker still has (its lease ran out
                        // during a long turn). Not a busy loop of claims: its worker notifies when it lets go.
                        if next <= Date(), !(await queue.held).isEmpty { ms = max(ms, 50) }
                        timeout = .milliseconds(min(ms, 5000))
                    }
                } catch {
                    timeout = .seconds(1)  // storage failing: look again soon, so work resumes within a second of it
                }
            } else {
                timeout = .milliseconds(50)  // all workers busy: a finishing one notifies
            }
            // Storage failed a moment ago: a write whose outcome nobody learned (its connection died with the COMMIT
            // sent) may be queued with no wake-up on its way, so look again within a second for a while.
            if health.failure(within: Self.afterStorageFailure) != nil { timeout = min(timeout, .seconds(1)) }
            await signal.wait(timeout: timeout)
        }
    }

    private func workerLoop() async {
        while let key = await queue.next() {
            // Given back while the key is still held, so that no claim hands the device to a second worker before
            // the release is through (a release that lands late would give back that worker's lease).
            if await work(on: key) { await release(key) }
            // A claim that took the device while this turn ran holds a lease too: given back as well, so that the
            // next claim starts a turn of its own under a lease of its own.
            while await queue.finish(key) { await release(key) }
            signal.notify()
        }
    }

    /// Gives `key`'s lease back, trying again while storage fails: a device whose turn ended in a storage error
    /// must not wait out its lease once storage answers. Given up only at shutdown (the lease then runs out).
    private func release(_ key: DeviceKey) async {
        var delay = Duration.milliseconds(50)
        while true {
            do {
                try await timed("release") { [store, owner] in try await store.releaseLease(key, owner: owner) }
                return
            } catch StorageError.leaseLost {
                return
            } catch {
                guard running.get(), !Task.isCancelled else { return }
                try? await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(1))
            }
        }
    }

    /// Runs one of a turn's commits, trying it again while storage fails (a database restarting, a disk that was
    /// full) until half the lease since its last renewal has passed, so that the ME answer it records is kept rather
    /// than asked for again. A lost lease ends it at once; so does shutdown.
    private func persist<T: Sendable>(_ operation: String, key: DeviceKey, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        var delay = Duration.milliseconds(50)
        while true {
            do {
                return try await timed(operation, body)
            } catch {
                if case StorageError.leaseLost = error { throw error }
                guard running.get(), !Task.isCancelled, ContinuousClock.now + delay < renewedAt(key) + config.lease / 2 else { throw error }
                try? await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(1))
            }
        }
    }

    /// Runs `key`'s steps until it is idle, waits, backs off, or has had its turn. Returns whether the lease
    /// still has to be given back: not when the turn's last commit gave it back in the same write, nor when
    /// it was lost (another instance has the device now).
    @discardableResult
    private func work(on key: DeviceKey) async -> Bool {
        let policy = config.apps[key.appCode] ?? AppPolicy()
        let planner = Planner(policy: policy, sdkVersion: config.sdkVersion)
        let reducer = Reducer(retry: config.retry, refreshReplayDelayMs: config.refreshReplayDelayMs)
        var log = logger
        log[metadataKey: "app"] = "\(key.appCode)"
        log[metadataKey: "device"] = "\(key.deviceId)"
        // Leased by the claim just before this turn; renewed by each commit and the heartbeat until the turn ends.
        renewed.update { $0[key] = .now }
        defer { renewed.update { $0[key] = nil } }
        do {
            // The next step's work when the last commit read it already (same transaction).
            var prefetched: Work?
            for _ in 0..<config.maxStepsPerTurn {
                guard running.get() else { return true }
                let loaded: Work?
                if let prefetched {
                    loaded = prefetched
                } else {
                    loaded = try await timed("load") { [store] in try await store.loadWork(key) }
                }
                prefetched = nil
                guard let work = loaded else { return true }
                let now = Date()
                let nowMs = Int64((now.timeIntervalSince1970 * 1000).rounded(.down))
                let plan = planner.plan(state: work.state, queue: work.queue, appCode: key.appCode, moveBlocked: work.moveBlocked, nowMs: nowMs)
                let step: TurnStep
                if case .send(let call, let context) = plan {
                    guard let head = work.head else { return true }
                    if let mark = Turn.beforeSending(call, work: work, owner: owner) {
                        // Durable before the request leaves: ME may hold the token from now on.
                        step = mark
                    } else {
                        switch await waitForTurn(key.appCode) {
                        case .go:
                            break
                        case .stopped:
                            return true
                        case .later(let at):
                            // Too long to wait holding the lease and a worker: the device comes back then, nothing sent.
                            let back = WorkUpdate(
                                state: work.state, headId: nil, next: .at(at), newestIntentIdSeen: work.newestIntentId, owner: owner,
                                releaseLease: true)
                            try await persist("commit", key: key) { [store] in try await store.commit(key, back, now: Date()) }
                            return false
                        }
                        let (started, startedAt) = (ContinuousClock.now, Date())
                        let answer = try await sendWithinLease(key, call, context: context, logger: log)
                        if case .http(429, let retryAfter, _) = answer.outcome {
                            // ME asks this app to slow down: every device of it waits (the reducer backs this one off).
                            config.rateLimiter.pause(app: key.appCode, for: .milliseconds(Int64(min(retryAfter ?? 1, 300) * 1000)))
                        }
                        let elapsed = ContinuousClock.now - started
                        let t = reducer.apply(state: work.state, head: head, call: call, context: context, answer: answer, now: Date(), jitter: Double.random(in: 0..<1))
                        record(call: call, head: head, before: work.state, transition: t, elapsed: elapsed)
                        config.history?(HistoryRecord(key: key, at: startedAt, entry: .call(
                            endpoint: call.endpoint, status: answer.status, attempt: work.state.attempts + 1,
                            durationMs: Int(elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000))))
                        logStep(log, call: call, transition: t)
                        step = Turn.afterAnswer(t, work: work, head: head, owner: owner, planner: planner, appCode: key.appCode, nowMs: nowMs + 1)
                    }
                } else {
                    guard let decided = Turn.afterPlan(plan, work: work, owner: owner, now: now) else { return true }
                    step = decided
                }
                switch step.notifying(webhookRouting(key.appCode, head: work.head, state: work.state)) {
                case .finish(let update):
                    try await persist("commit", key: key) { [store] in try await store.commit(key, update, now: Date()) }
                    if update.forget { log.info("device forgotten") }
                    return false
                case .proceed(let update):
                    guard let next = try await persist("commit_and_load", key: key, { [store] in
                        try await store.commitAndLoad(key, update, now: Date())
                    }) else { return true }
                    renewed.update { $0[key] = .now }  // a fenced commit renews the lease
                    prefetched = next
                }
            }
        } catch StorageError.leaseLost {
            // Another instance took the device after our lease ran out; its work goes on there.
            log.warning("lease lost; the device is left to the instance that holds it now")
            return false
        } catch {
            log.error("device step failed in storage; it stays queued", metadata: ["error": "\(storageErrorText(error))"])
        }
        return true
    }

    /// What became of a wait for the app's turn toward ME.
    private enum TurnWait {
        case go
        /// The engine stopped meanwhile: nothing sent, the step stays queued.
        case stopped
        /// The turn is further away than a worker may hold a device's lease: the device is handed back, due then.
        case later(Date)
    }

    /// Waits for `app`'s next start time toward ME (`apps[].meRequestsPerSecond`), in steps of at most 100 ms so that a
    /// shutdown does not wait for it. A turn more than a quarter of the lease away is not waited for (`later`): the lease
    /// would run out and another instance could send the same call. A 429 that paused the app meanwhile moves the turn
    /// past the pause. The wait is recorded per app (`pushbridge_me_rate_limit_wait_seconds`).
    private func waitForTurn(_ app: String) async -> TurnWait {
        let limiter = config.rateLimiter
        guard limiter.limits(app) else { return .go }
        let asked = ContinuousClock.now
        var at: ContinuousClock.Instant
        while true {
            // Nothing is reserved for a turn that is not waited for: the device comes back when it would have been.
            let now = ContinuousClock.now
            switch limiter.reserve(app: app, now: now, within: config.lease / 4) {
            case .reserved(let start): at = start
            case .notBefore(let start): return .later(Date().addingTimeInterval(Self.seconds(start - now)))
            }
            while ContinuousClock.now < at {
                guard running.get() else { return .stopped }
                try? await Task.sleep(until: min(at, .now + .milliseconds(100)), clock: .continuous)
            }
            // A grant from before a 429 does not start during the pause it caused: it is asked for again.
            guard limiter.pausedUntil(app: app) != nil else { break }
        }
        metrics.rateLimitWait(app: app, at - asked)
        return running.get() ? .go : .stopped
    }

    private static func seconds(_ d: Duration) -> TimeInterval {
        TimeInterval(d.components.seconds) + TimeInterval(d.components.attoseconds) / 1e18
    }

    /// What a commit of `app`'s device tells its webhook endpoints (none while an endpoint's outbox is full: what
    /// backends heard still moves on, so that message is dropped, not delayed), and why a token it removes left.
    /// Every commit gets one, endpoints or not: the store keeps what backends heard up to date either way.
    private func webhookRouting(_ app: String, head: Intent?, state: DeviceState) -> WebhookRouting {
        let full = config.webhookBacklogFull.get()
        let endpoints = (config.webhooks[app] ?? []).filter { !full.contains($0.id) }
        return WebhookRouting(endpoints: endpoints, unregisterReason: Turn.unregisterReason(head: head, state: state))
    }

    /// Runs one storage operation, records how long it took, and reports a failure (a lost lease is none). It waits
    /// at most `storageTimeout`: a query on a connection that died with the database may never answer.
    func timed<T: Sendable>(_ operation: String, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        let started = ContinuousClock.now
        defer { metrics.storeLatency(operation: operation, ContinuousClock.now - started) }
        do {
            return try await withStorageTimeout(config.storageTimeout, on: store, endedLate: { [orphanedLeases, signal] in
                orphanedLeases.set(true)
                signal.notify()
            }, body)
        } catch {
            if case StorageError.leaseLost = error { throw error }
            health.failed(operation, error)
            throw error
        }
    }

    private func record(call: MECall, head: Intent, before: DeviceState, transition t: Transition, elapsed: Duration) {
        metrics.meCall(endpoint: call.endpoint, outcome: t.outcome.rawValue)
        metrics.meLatency(endpoint: call.endpoint, elapsed)
        if case .refreshContactToken = call, t.outcome == .success { metrics.contactTokenRefresh() }
        if !before.relinked && t.state.relinked { metrics.relink() }
        if head.payload.releaseCause == .moved, case .removePushToken = call, t.outcome == .success { metrics.tokenMove() }
    }

    private func logStep(_ log: Logger, call: MECall, transition t: Transition) {
        var metadata: Logger.Metadata = ["step": "\(call.step)", "outcome": "\(t.outcome.rawValue)"]
        if let hash = t.state.pushTokenSent?.tokenHash { metadata["tokenHash"] = "\(hash.prefix(12))" }
        if let error = t.state.lastError, t.outcome != .success {
            metadata["status"] = "\(error.status.map(String.init) ?? "network")"
            metadata["attempts"] = "\(error.attempts)"
        }
        switch t.outcome {
        case .success: log.debug("ME step done", metadata: metadata)
        case .transient: log.notice("ME step failed transiently; retrying with backoff", metadata: metadata)
        case .permanent, .unauthorized: log.warning("ME step failed", metadata: metadata)
        }
    }
}
