import ConcurrencySupport
import Foundation
import GRDB
import Storage
import Workflow

/// The real store with faults injected on demand: an operation named in `faults` throws SQLite's I/O error (`fail`)
/// or does not answer (`hang`) before it reaches the store underneath, answers only `late` after it did its work, or
/// does its work `slow`ly, after its caller may have given up.
/// The storage-failure tests put it around the bridge's SQLite store, so the API and the engine meet a database that
/// fails exactly where a test says.
final class FailingStore: DeviceStore {
    enum Fault: Sendable {
        case fail, hang, late(Duration)
        /// Starts the operation only after `delay`, and runs it to its end even when the caller gave up meanwhile:
        /// a query already sent to a server that answers slowly.
        case slow(Duration)
    }

    let base: any DeviceStore
    private let faults = LockedValue<[String: Fault]>([:])
    /// How many calls each operation got while it was faulted.
    private let hits = LockedValue<[String: Int]>([:])
    /// The devices each claim was told to skip (held by the engine's workers).
    private let skipped = LockedValue<[Set<DeviceKey>]>([])

    /// When a claim first took each device.
    private let claimed = LockedValue<[DeviceKey: ContinuousClock.Instant]>([:])
    /// When a `slow` operation last ended, by operation.
    private let slowEnded = LockedValue<[String: ContinuousClock.Instant]>([:])

    /// Whether some claim skipped `key`.
    func claimSkipped(_ key: DeviceKey) -> Bool { skipped.get().contains { $0.contains(key) } }
    /// When a claim first took `key`.
    func claimedAt(_ key: DeviceKey) -> ContinuousClock.Instant? { claimed.get()[key] }
    /// When the last `slow` run of `operation` ended (its work done).
    func slowEndedAt(_ operation: String) -> ContinuousClock.Instant? { slowEnded.get()[operation] }

    init(_ base: any DeviceStore) { self.base = base }

    func set(_ fault: Fault?, on operations: [String]) {
        faults.update { for op in operations { $0[op] = fault } }
    }

    func faultedCalls(_ operation: String) -> Int { hits.get()[operation] ?? 0 }

    /// Runs `body` on the store underneath, with the fault set on `operation`.
    private func run<T: Sendable>(_ operation: String, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        guard let fault = faults.get()[operation] else { return try await body() }
        hits.update { $0[operation, default: 0] += 1 }
        switch fault {
        case .fail:
            throw Self.ioError(operation)
        case .hang:
            try await Task.sleep(for: .seconds(120))
            throw Self.ioError(operation)
        case .late(let delay):
            let result = try await body()
            try await Task.sleep(for: delay)
            return result
        case .slow(let delay):
            // Not the caller's task: its cancellation (a storage timeout) does not stop it.
            return try await Task { [slowEnded] in
                try? await Task.sleep(for: delay)
                defer { slowEnded.update { $0[operation] = .now } }
                return try await body()
            }.value
        }
    }

    /// What SQLite says when the disk fails under it: a driver error the bridge reads as storage being unavailable.
    static func ioError(_ operation: String) -> DatabaseError {
        DatabaseError(resultCode: .SQLITE_IOERR, message: "disk I/O error (injected in \(operation))")
    }

    static let apiOperations = ["accept", "invalidate", "snapshot", "list", "overview", "queuedIntents", "ping"]
    static let engineOperations = ["claimDue", "nextDueAt", "loadWork", "commit", "commitAndLoad", "releaseLease", "releaseLeases"]

    /// Its hangs must meet the watchdog, whatever the store underneath.
    var mayStall: Bool { true }
    func migrate() async throws { try await base.migrate() }
    func accept(_ write: DeviceWrite, for key: DeviceKey, policy: AppPolicy, limits: QueueLimits, newClientId: String, now: Date) async throws -> AcceptResult {
        return try await run("accept") { [base] in try await base.accept(write, for: key, policy: policy, limits: limits, newClientId: newClientId, now: now) }
    }
    func invalidate(tokenHash: String, app: String, now: Date) async throws -> [DeviceSnapshot] {
        return try await run("invalidate") { [base] in try await base.invalidate(tokenHash: tokenHash, app: app, now: now) }
    }
    func snapshot(of key: DeviceKey) async throws -> DeviceSnapshot? {
        return try await run("snapshot") { [base] in try await base.snapshot(of: key) }
    }
    func list(app: String, state: String?, limit: Int, after cursor: String?) async throws -> DevicePage {
        return try await run("list") { [base] in try await base.list(app: app, state: state, limit: limit, after: cursor) }
    }
    func claimDue(now: Date, limit: Int, owner: String, lease: Duration, except held: Set<DeviceKey>) async throws -> [DeviceKey] {
        skipped.update { $0.append(held) }
        let keys = try await run("claimDue") { [base] in try await base.claimDue(now: now, limit: limit, owner: owner, lease: lease, except: held) }
        let at = ContinuousClock.now
        claimed.update { for key in keys where $0[key] == nil { $0[key] = at } }
        return keys
    }
    func nextDueAt() async throws -> Date? {
        return try await run("nextDueAt") { [base] in try await base.nextDueAt() }
    }
    func loadWork(_ key: DeviceKey) async throws -> Work? {
        return try await run("loadWork") { [base] in try await base.loadWork(key) }
    }
    func commit(_ key: DeviceKey, _ update: WorkUpdate, now: Date) async throws {
        try await run("commit") { [base] in try await base.commit(key, update, now: now) }
    }
    func commitAndLoad(_ key: DeviceKey, _ update: WorkUpdate, now: Date) async throws -> Work? {
        return try await run("commitAndLoad") { [base] in try await base.commitAndLoad(key, update, now: now) }
    }
    func releaseLease(_ key: DeviceKey, owner: String) async throws {
        try await run("releaseLease") { [base] in try await base.releaseLease(key, owner: owner) }
    }
    func releaseLeases(owner: String, except working: Set<DeviceKey>) async throws -> Int {
        return try await run("releaseLeases") { [base] in try await base.releaseLeases(owner: owner, except: working) }
    }
    func ping() async throws {
        try await run("ping") { [base] in try await base.ping() }
    }
    func queuedIntents() async throws -> (total: Int, perApp: [String: Int]) {
        return try await run("queuedIntents") { [base] in try await base.queuedIntents() }
    }
    func overview(app: String?, failures: Int) async throws -> StoreOverview {
        return try await run("overview") { [base] in try await base.overview(app: app, failures: failures) }
    }
    func close() async throws { try await base.close() }
    func claimWebhooks(endpoint: String, now: Date, limit: Int, owner: String, lease: Duration) async throws -> [OutboxMessage] {
        try await run("claim_webhooks") { [base] in try await base.claimWebhooks(endpoint: endpoint, now: now, limit: limit, owner: owner, lease: lease) }
    }
    func settleWebhook(id: Int64, owner: String, _ settlement: OutboxSettlement) async throws {
        try await run("settle_webhook") { [base] in try await base.settleWebhook(id: id, owner: owner, settlement) }
    }
    func webhookBacklog() async throws -> OutboxBacklog {
        try await run("webhook_backlog") { [base] in try await base.webhookBacklog() }
    }
    func dropWebhooks(keeping endpoints: Set<String>, madeBefore: Date) async throws -> Int {
        try await run("drop_webhooks") { [base] in try await base.dropWebhooks(keeping: endpoints, madeBefore: madeBefore) }
    }
    func appendHistory(_ records: [HistoryRecord], keepPerDevice: Int) async throws {
        try await run("append_history") { [base] in try await base.appendHistory(records, keepPerDevice: keepPerDevice) }
    }
    func history(of key: DeviceKey, limit: Int) async throws -> [HistoryRecord]? {
        try await run("history") { [base] in try await base.history(of: key, limit: limit) }
    }
    func trimHistory(before: Date) async throws -> Int {
        try await run("trim_history") { [base] in try await base.trimHistory(before: before) }
    }
    func claimIdempotencyKey(app: String, key: String, request: Data, now: Date, window: IdempotencyWindow) async throws -> IdempotencyClaim {
        try await run("claim_idempotency_key") { [base] in try await base.claimIdempotencyKey(app: app, key: key, request: request, now: now, window: window) }
    }
    func settleIdempotencyKey(app: String, key: String, claim: String, request: Data, answer: IdempotentAnswer?) async throws {
        try await run("settle_idempotency_key") { [base] in try await base.settleIdempotencyKey(app: app, key: key, claim: claim, request: request, answer: answer) }
    }
    func purgeIdempotencyKeys(before: Date) async throws -> Int {
        try await run("purge_idempotency_keys") { [base] in try await base.purgeIdempotencyKeys(before: before) }
    }
    func retryFailed(app: String, step: String?, now: Date) async throws -> Int {
        try await run("retry_failed") { [base] in try await base.retryFailed(app: app, step: step, now: now) }
    }
    func devices(ofContact fieldId: Int, value: String, app: String, limit: Int) async throws -> [DeviceSnapshot] {
        try await run("contact_devices") { [base] in try await base.devices(ofContact: fieldId, value: value, app: app, limit: limit) }
    }
    func accept(
        _ write: DeviceWrite, for key: DeviceKey, ifContact fieldId: Int, value: String, policy: AppPolicy, limits: QueueLimits, now: Date
    ) async throws -> AcceptResult {
        try await run("accept") { [base] in try await base.accept(write, for: key, ifContact: fieldId, value: value, policy: policy, limits: limits, now: now) }
    }
    func renewLeases(_ keys: [DeviceKey], owner: String, lease: Duration, now: Date) async throws -> Set<DeviceKey> {
        try await run("renew") { [base] in try await base.renewLeases(keys, owner: owner, lease: lease, now: now) }
    }
    func releaseLeases(ofInstance instance: String, except owner: String) async throws -> Int {
        try await run("release_instance") { [base] in try await base.releaseLeases(ofInstance: instance, except: owner) }
    }
    func markSeen(_ seen: [DeviceKey: Date]) async throws {
        try await run("mark_seen") { [base] in try await base.markSeen(seen) }
    }
    func expireDevices(app: String, seenBefore: Date, limit: Int, now: Date) async throws -> RetentionBatch {
        try await run("expire_devices") { [base] in try await base.expireDevices(app: app, seenBefore: seenBefore, limit: limit, now: now) }
    }
    func forgetDevices(app: String, seenBefore: Date, policy: AppPolicy, limits: QueueLimits, limit: Int, now: Date) async throws -> RetentionBatch {
        try await run("forget_devices") { [base] in
            try await base.forgetDevices(app: app, seenBefore: seenBefore, policy: policy, limits: limits, limit: limit, now: now)
        }
    }
}
