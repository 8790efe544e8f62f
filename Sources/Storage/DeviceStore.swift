import Foundation
import Workflow

/// Devices and their queued intents, durably. SQLite is the embedded default; PostgreSQL implements
/// the same protocol for several instances.
///
/// Every method is one transaction: an intent is committed before the API answers 2xx, and an
/// engine step's result is committed with the state it produced.
public protocol DeviceStore: Sendable {
    /// Whether a call may wait on something outside the process (a database server and its connections): the API and
    /// the engine then stop waiting after `storage.timeoutMs`. SQLite answers or fails by itself (a full disk, a
    /// read-only file), so its calls go without the watchdog and its cost.
    var mayStall: Bool { get }

    /// Creates or upgrades the schema.
    func migrate() async throws

    /// Applies a validated API write: deduplicates, collapses, moves tokens, enforces the queue bound.
    func accept(_ write: DeviceWrite, for key: DeviceKey, policy: AppPolicy, limits: QueueLimits, newClientId: String, now: Date) async throws -> AcceptResult

    /// A token reported dead (`POST .../tokens/invalidate`): the device of `app` that holds `tokenHash` (sent or
    /// queued) gets it removed at ME, as when the token moves to another device, but no device takes it. Returns the
    /// devices that held it, as the write leaves them (none: nothing changed).
    func invalidate(tokenHash: String, app: String, now: Date) async throws -> [DeviceSnapshot]

    func snapshot(of key: DeviceKey) async throws -> DeviceSnapshot?
    func list(app: String, state: String?, limit: Int, after cursor: String?) async throws -> DevicePage

    /// Leases up to `limit` devices whose work is due, for `lease`, but none in `held` (devices this instance's
    /// workers still have: a release of theirs still on its way must not meet a lease taken meanwhile, since a
    /// release names the owner, not the lease); returns their keys.
    func claimDue(now: Date, limit: Int, owner: String, lease: Duration, except held: Set<DeviceKey>) async throws -> [DeviceKey]
    /// The earliest time any device's work is due, or nil when nothing is queued. A leased device counts
    /// from when its lease ends (another instance's work is not this one's to wait for).
    func nextDueAt() async throws -> Date?
    /// The device's state and the intent at the head of its queue.
    func loadWork(_ key: DeviceKey) async throws -> Work?
    /// Commits one engine step. When `update.owner` is set the commit is fenced: if that owner no longer
    /// holds the device's lease, nothing changes and `StorageError.leaseLost` is thrown.
    func commit(_ key: DeviceKey, _ update: WorkUpdate, now: Date) async throws
    /// Commits one engine step and reads the device's next work: what `commit` then `loadWork` give, in one
    /// trip to storage where the store can (nil when the device is gone). A failed read after a successful
    /// commit keeps the commit.
    func commitAndLoad(_ key: DeviceKey, _ update: WorkUpdate, now: Date) async throws -> Work?
    /// Gives the device back; its due time stays as the last commit set it.
    func releaseLease(_ key: DeviceKey, owner: String) async throws
    /// Gives back every lease `owner` holds except on `working`: after a claim whose answer was lost (the connection
    /// died after its commit, or the engine stopped waiting for it), the devices it leased are nobody's work until
    /// their lease runs out. Returns how many were given back.
    func releaseLeases(owner: String, except working: Set<DeviceKey>) async throws -> Int
    /// The engine's heartbeat: the leases `owner` still holds on `keys` now run until `now + lease`. Returns those
    /// keys (a device whose lease was lost or given back meanwhile is left out).
    func renewLeases(_ keys: [DeviceKey], owner: String, lease: Duration, now: Date) async throws -> Set<DeviceKey>
    /// Gives back every lease an earlier run of instance `instance` held (owners `<instance>/...` other than `owner`,
    /// this run's), at start: a restarted instance resumes its devices at once instead of waiting for its own leases.
    func releaseLeases(ofInstance instance: String, except owner: String) async throws -> Int

    /// Commits one small write (readiness' probe): throws when storage cannot write, as on a full disk, a
    /// read-only file or a database that is down. Upserts one row of `meta`; nothing reads it.
    func ping() async throws
    /// Intents queued in total and per app.
    func queuedIntents() async throws -> (total: Int, perApp: [String: Int])
    /// Devices by app, state and provider, the queue, and the newest failures (of `app`, or all).
    func overview(app: String?, failures: Int) async throws -> StoreOverview
    func close() async throws

    // The webhook outbox (its rows are written by `commit` when `WorkUpdate.notify` is set).
    /// Up to `limit` due messages for `endpoint`, each the oldest of its device there, none leased by anyone; leased
    /// to `owner` for `lease` (on PostgreSQL each message is with one instance at a time).
    func claimWebhooks(endpoint: String, now: Date, limit: Int, owner: String, lease: Duration) async throws -> [OutboxMessage]
    /// Records what became of an attempt on message `id`, if `owner` still holds it.
    func settleWebhook(id: Int64, owner: String, _ settlement: OutboxSettlement) async throws
    func webhookBacklog() async throws -> OutboxBacklog
    /// Deletes the messages made before `madeBefore` of endpoints not in `endpoints` (no longer configured: nobody
    /// would deliver them; younger ones may still be another instance's during a rolling change); how many.
    func dropWebhooks(keeping endpoints: Set<String>, madeBefore: Date) async throws -> Int

    // History (state transitions are written by `commit` itself, in its transaction).
    /// Appends entries (API writes, ME calls, webhook attempts) of devices that exist, in one transaction; each
    /// device written to keeps its newest `keepPerDevice` entries.
    func appendHistory(_ records: [HistoryRecord], keepPerDevice: Int) async throws
    /// The device's newest `limit` entries, newest first (by time, then by order of writing); nil for an unknown
    /// device.
    func history(of key: DeviceKey, limit: Int) async throws -> [HistoryRecord]?
    /// Deletes entries older than `before`; how many.
    func trimHistory(before: Date) async throws -> Int

    // Idempotency keys (`Idempotency-Key` on API writes), per app; `request` is the method, path and body, kept only
    // as a keyed fingerprint.
    /// Takes the key for this request, or says what was answered to it, or that it is being answered, or that it was
    /// used with another request.
    func claimIdempotencyKey(app: String, key: String, request: Data, now: Date, window: IdempotencyWindow) async throws -> IdempotencyClaim
    /// Keeps `answer` for the key taken by `claimIdempotencyKey` with `claim`, or frees the key (nil: an answer that a
    /// retry must not get again); nothing when the key was taken over meanwhile (abandoned, then claimed again).
    func settleIdempotencyKey(app: String, key: String, claim: String, request: Data, answer: IdempotentAnswer?) async throws
    /// Deletes keys first used before `before`; how many.
    func purgeIdempotencyKeys(before: Date) async throws -> Int

    // Retention (`apps[].retention`; `last_seen_at` is written by `accept` for stored writes, by `markSeen` for
    // deduplicated ones).
    /// The devices were seen (a deduplicated backend write) at these times; devices that are gone are left out.
    func markSeen(_ seen: [DeviceKey: Date]) async throws
    /// Queues, for up to `limit` devices of `app` last seen before `seenBefore`, the removal of their token at ME as when
    /// it is reported dead, with the reason `expired`; each device once until a backend writes for it again.
    func expireDevices(app: String, seenBefore: Date, limit: Int, now: Date) async throws -> RetentionBatch
    /// Queues a forget (as `DELETE` does) for up to `limit` devices of `app` last seen before `seenBefore`; each device
    /// once until a backend writes for it again. Stops early at the queue bound.
    func forgetDevices(app: String, seenBefore: Date, policy: AppPolicy, limits: QueueLimits, limit: Int, now: Date) async throws -> RetentionBatch

    /// Re-drive: every `failed` device of `app` with work queued (whose failed step is `step`, when given) becomes due
    /// now; the engine starts its failed step again with a fresh budget. Returns how many.
    func retryFailed(app: String, step: String?, now: Date) async throws -> Int

    // Contacts (`devices.contact_key`, written by `accept`).
    /// Up to `limit` devices of `app` whose newest requested contact is the identified contact `fieldId`/`value`
    /// (an OpenID login, a logout or a forget since leaves a device out), by device id.
    func devices(ofContact fieldId: Int, value: String, app: String, limit: Int) async throws -> [DeviceSnapshot]
    /// `accept` for one of a contact's devices (a logout or a forget of `POST .../contacts/...`), decided under the
    /// write's locks: when the device's newest requested contact is no longer `fieldId`/`value` (a login of someone else
    /// overtook it), nothing is stored and the answer is `.unknownDevice`. Never creates a device.
    func accept(
        _ write: DeviceWrite, for key: DeviceKey, ifContact fieldId: Int, value: String, policy: AppPolicy, limits: QueueLimits, now: Date
    ) async throws -> AcceptResult
}

public struct QueueLimits: Sendable, Hashable {
    public var maxQueuedIntents: Int
    public var maxQueuedIntentsPerApp: Int
    public init(maxQueuedIntents: Int = 1_000_000, maxQueuedIntentsPerApp: Int = 250_000) {
        self.maxQueuedIntents = maxQueuedIntents
        self.maxQueuedIntentsPerApp = maxQueuedIntentsPerApp
    }
}

extension QueueLimits {
    /// The edits of a device's own queue for an accepted write (`Intake.edits`), and how many intents it adds: its
    /// own, a release at a token's old holder, less the superseded ones.
    static func growth(
        queued: [Intent], state: DeviceState?, payload: IntentPayload, collapse: Bool, movesToken: Bool
    ) -> (edits: QueueEdits, added: Int) {
        let edits = Intake.edits(for: payload, collapse: collapse, queued: queued, state: state)
        return (edits, 1 + (movesToken ? 1 : 0) - edits.dropIds.count)
    }

    /// `.queueFull` when `added` more intents exceed a bound, given the queued totals.
    func refusal(adding added: Int, counts: (total: Int, app: Int)) -> AcceptResult? {
        if counts.total + added > maxQueuedIntents { return .queueFull(scope: "global") }
        if counts.app + added > maxQueuedIntentsPerApp { return .queueFull(scope: "app") }
        return nil
    }
}

/// A device as a store reads it: its registration columns and the engine's state. The HTTP layer renders it as
/// the contract's status document; a store never builds API output.
public struct DeviceSnapshot: Sendable, Hashable {
    public var registration: DeviceRegistration
    public var state: DeviceState
    public init(registration: DeviceRegistration, state: DeviceState) {
        self.registration = registration
        self.state = state
    }
}

public enum AcceptResult: Sendable {
    /// Stored: the device as the write left it.
    case accepted(DeviceSnapshot)
    /// Nothing would change at ME: the device as it is.
    case deduplicated(DeviceSnapshot)
    case unknownDevice
    /// Over the queue bound: nothing was stored.
    case queueFull(scope: String)

    /// For the history: false when stored, true when deduplicated, nil when neither (nothing happened to a device).
    public var deduplicated: Bool? {
        switch self {
        case .accepted: false
        case .deduplicated: true
        case .unknownDevice, .queueFull: nil
        }
    }
}

public struct DevicePage: Sendable {
    public var devices: [DeviceSnapshot]
    public var nextCursor: String?
}

/// What a worker needs to plan the next step of a device.
public struct Work: Sendable {
    public var state: DeviceState
    /// The device's queue in processing order (the head first; bounded).
    public var queue: [Intent]
    public var head: Intent? { queue.first }
    /// The head's token is still being removed at ME from another device (a release of it is queued there).
    public var moveBlocked: Bool
    /// The newest intent id seen: a commit that finds newer ones keeps the device due.
    public var newestIntentId: Int64

    public init(state: DeviceState, queue: [Intent], moveBlocked: Bool, newestIntentId: Int64) {
        self.state = state
        self.queue = queue
        self.moveBlocked = moveBlocked
        self.newestIntentId = newestIntentId
    }
}

/// How much of a device's queue a worker loads (`Work.queue`), in both stores.
enum QueueWindow {
    static let size = 64

    /// The newest intent id when `queue` (loaded with `size` as its limit) is shorter than the window, and so is the
    /// whole queue; nil when more may follow, and the store must read it.
    static func newestIfWhole(_ queue: [Intent]) -> Int64? {
        queue.count < size ? queue.map(\.id).max() ?? 0 : nil
    }
}

extension DeviceStore {
    /// `claimDue` with nothing held.
    public func claimDue(now: Date, limit: Int, owner: String, lease: Duration) async throws -> [DeviceKey] {
        try await claimDue(now: now, limit: limit, owner: owner, lease: lease, except: [])
    }
}

/// One engine step's result.
public struct WorkUpdate: Sendable {
    public enum Next: Sendable, Hashable {
        /// Keep working (the worker goes on at once).
        case now
        /// Transient failure: try again then.
        case at(Date)
        /// Nothing to do until a new intent arrives (idle, failed, waiting for a login).
        case whenWoken
    }
    public var state: DeviceState
    public var headId: Int64?
    public var headProgress: Int?
    public var popHead: Bool
    public var forget: Bool
    public var next: Next
    public var newestIntentIdSeen: Int64
    /// The lease owner committing (the engine always sets it); nil commits unfenced.
    public var owner: String?
    /// The worker's turn ends with this commit: the lease is given back in the same write, as
    /// `releaseLease` would do after it (one write fewer per turn).
    public var releaseLease: Bool
    /// Who hears of the state this commit enters, and why a device that ends `unregistered` does (nil: nobody).
    public var notify: WebhookRouting?

    public init(
        state: DeviceState, headId: Int64?, headProgress: Int? = nil, popHead: Bool = false, forget: Bool = false, next: Next,
        newestIntentIdSeen: Int64, owner: String? = nil, releaseLease: Bool = false
    ) {
        self.state = state
        self.headId = headId
        self.headProgress = headProgress
        self.popHead = popHead
        self.forget = forget
        self.next = next
        self.newestIntentIdSeen = newestIntentIdSeen
        self.owner = owner
        self.releaseLease = releaseLease
    }
}

/// The app's webhook endpoints, for the commit that may enter a state they hear of: the store writes one outbox row per
/// endpoint whose filter takes the event, in the commit's transaction.
public struct WebhookRouting: Sendable, Hashable {
    public struct Endpoint: Sendable, Hashable {
        /// A stable id of the endpoint (a hash of its URL): rows outlive restarts, not configuration changes.
        public var id: String
        /// The event types it takes (`device.registered`, ...).
        public var events: Set<String>
        public init(id: String, events: Set<String>) {
            self.id = id
            self.events = events
        }
    }
    public var endpoints: [Endpoint]
    /// `removed`, `moved`, `invalidated`, `expired` or `client-changed`: why this commit's step would leave the
    /// device without a token (nil: this step removes none). Remembered until the device enters `unregistered`.
    public var unregisterReason: String?
    public init(endpoints: [Endpoint], unregisterReason: String?) {
        self.endpoints = endpoints
        self.unregisterReason = unregisterReason
    }

    /// What a commit tells backends, from what they last heard (`devices.notified`), the reason remembered for a
    /// token that left (`devices.unregister_reason`) and the state the commit leaves. Pure; both stores apply it on
    /// every commit, with or without endpoints, so that an endpoint configured later starts from the truth.
    public struct Step: Sendable, Hashable {
        /// The new `notified`: `device.registered:<token hash at ME>`, `device.failed`, `device.unregistered`, or
        /// `device.recovering` for a failed device working again (its next failure is news); unchanged while a
        /// device is on its way (`pending`, `retrying`).
        public var notified: String?
        /// The new `unregister_reason`: cleared while a token is at ME, else the newest removal's reason.
        public var reason: String?
        /// The event to write, if any, and the reason a `device.unregistered` carries.
        public var event: String?
        public var eventReason: String?
    }

    public static func step(
        notified old: String?, reason oldReason: String?, state: DeviceStateName, device: DeviceState, reasonNow: String?
    ) -> Step {
        let reason = device.pushTokenSent != nil ? nil : (reasonNow ?? oldReason)
        let notified: String?
        switch state {
        case .registered: notified = "device.registered:" + (device.pushTokenSent?.tokenHash ?? "")
        case .failed: notified = "device.failed"
        case .unregistered: notified = "device.unregistered"
        case .pending, .retrying: notified = old == "device.failed" ? "device.recovering" : old
        }
        var event: String?
        if let notified, notified != old, notified != "device.recovering" {
            // A device that never had a token at ME and still has none has nothing to lose: no message. (A device
            // from before webhooks, whose column is empty, did have one if a push-token step ever succeeded.)
            let neverHadToken = notified == "device.unregistered" && old == nil && device.steps.pushTokenAt == nil
            if !neverHadToken { event = notified.split(separator: ":", maxSplits: 1).first.map(String.init) }
        }
        return Step(notified: notified, reason: reason, event: event, eventReason: event == "device.unregistered" ? (reason ?? "removed") : nil)
    }
}

extension WorkUpdate.Next {
    /// The device's due time (epoch ms) after a commit that leaves `pending` intents; `arrived`: some came after
    /// the worker's load (they wake a device that would otherwise wait to be woken).
    func dueAt(pending: Int, arrived: Bool, nowMs: Int64) -> Int64? {
        guard pending > 0 else { return nil }
        switch self {
        case .now: return nowMs
        case .at(let date): return Codec.ms(date)
        case .whenWoken: return arrived ? nowMs : nil
        }
    }
}

public enum StorageError: Error, CustomStringConvertible {
    case invalidURL(String)
    case corrupt(String)
    case invalidKey(String)
    case wrongKey
    /// A fenced commit found that its lease had passed to another instance (or expired and was given
    /// back): the step was not stored; the worker drops the device.
    case leaseLost(String)
    public var description: String {
        switch self {
        case .invalidURL(let m): "storage.url: \(m)"
        case .corrupt(let m): "storage: \(m)"
        case .invalidKey(let m): "storage.encryptionKey: \(m)"
        case .wrongKey: "storage.encryptionKey: the database was written with another key; start with the key it was created with"
        case .leaseLost(let device): "storage: the lease on \(device) was lost; the step was not committed"
        }
    }
}
