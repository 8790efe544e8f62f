import Foundation
import MobileEngage
import Workflow

/// The device store in memory, with the stores' rules: the pure decisions (`Intake.decide`, `Intake.release`,
/// `Intake.claimsKept`) applied as `SQLiteIntake` and `SQLiteCommit` apply them.
struct SimStore {
    struct Queued {
        var intent: Intent
        var tokenHash: String?
        var waitsFor: String?
    }
    struct Device {
        var state: DeviceState
        var queue: [Queued] = []
        var dueAt: Int64?
        /// The newest requested token's hash (the status's `tokenHash`).
        var tokenHash: String?
    }

    var devices: [String: Device] = [:]
    /// token hash -> device id (one app).
    var claims: [String: String] = [:]
    var nextIntentId: Int64 = 1
    var clientSerial = 0
    let appCode: String
    let policy: AppPolicy

    init(appCode: String, policy: AppPolicy) {
        self.appCode = appCode
        self.policy = policy
    }

    func ordered(_ id: String) -> [Queued] {
        (devices[id]?.queue ?? []).sorted { ($0.intent.payload.priority, $0.intent.id) < ($1.intent.payload.priority, $1.intent.id) }
    }

    mutating func newClientId() -> String {
        clientSerial += 1
        return "client-\(clientSerial)"
    }

    private mutating func insert(_ id: String, _ payload: IntentPayload, tokenHash: String?, waitsFor: String?, now: Int64) {
        let intent = Intent(id: nextIntentId, payload: payload, acceptedAt: Date(timeIntervalSince1970: Double(now) / 1000))
        nextIntentId += 1
        devices[id]?.queue.append(Queued(intent: intent, tokenHash: tokenHash, waitsFor: waitsFor))
    }

    /// An API write; false when it was deduplicated or needs an unknown device.
    @discardableResult
    mutating func accept(_ write: DeviceWrite, device id: String, now: Int64) -> Bool {
        let token = Intake.token(of: write)
        var holder: DeviceKey?
        if let token, let h = claims[token.tokenHash], h != id { holder = DeviceKey(appCode: appCode, deviceId: h) }
        let existing = devices[id]
        let view = IntakeView(exists: existing != nil, state: existing?.state, queued: ordered(id).map(\.intent), tokenHolder: holder)
        guard case .enqueue(let payload, let collapse, let takeFrom) = Intake.decide(write, view: view, policy: policy) else { return false }
        if existing == nil {
            guard let (state, _) = Intake.newDevice(for: write, generatedClientId: newClientId()) else { return false }
            devices[id] = Device(state: state)
        }
        apply(Intake.edits(for: payload, collapse: collapse, queued: ordered(id).map(\.intent), state: existing?.state), to: id, now: now)
        if let takeFrom, let token { release(token.tokenHash, from: takeFrom.deviceId, cause: .moved, now: now) }
        insert(id, payload, tokenHash: token?.tokenHash, waitsFor: takeFrom?.deviceId, now: now)
        // Claims.
        switch write {
        case .setToken, .start:
            if let token {
                dropClaims(of: id)
                claims[token.tokenHash] = id
            }
        case .removeToken, .forget:
            dropClaims(of: id)
        default:
            break
        }
        // Registration columns (the simulation only needs the token hash).
        let columns = Intake.registration(after: write, from: RegistrationColumns(provider: nil, platform: "", tokenHash: devices[id]?.tokenHash))
        devices[id]?.tokenHash = columns.tokenHash
        if devices[id]?.dueAt == nil { devices[id]?.dueAt = now }
        return true
    }

    /// `SQLiteRows.apply`.
    private mutating func apply(_ edits: QueueEdits, to id: String, now: Int64) {
        devices[id]?.queue.removeAll { edits.dropIds.contains($0.intent.id) }
        for rewrite in edits.rewrites {
            if let i = devices[id]?.queue.firstIndex(where: { $0.intent.id == rewrite.id }) {
                devices[id]?.queue[i].intent.payload = rewrite.payload
                devices[id]?.queue[i].tokenHash = nil
                devices[id]?.queue[i].waitsFor = nil
            }
        }
    }

    private mutating func dropClaims(of id: String) {
        let kept = Intake.claimsKept(by: devices[id]?.state)
        for (hash, holder) in claims where holder == id && !kept.contains(hash) { claims[hash] = nil }
    }

    private mutating func release(_ hash: String, from holder: String, cause: ReleaseCause, now: Int64) {
        guard let held = devices[holder] else {
            claims[hash] = nil
            return
        }
        let move = Intake.release(tokenHash: hash, cause: cause, state: held.state, queued: ordered(holder).map(\.intent))
        apply(move.edits, to: holder, now: now)
        insert(holder, move.release, tokenHash: hash, waitsFor: nil, now: now)
        if claims[hash] == holder { claims[hash] = nil }
        if devices[holder]?.tokenHash == hash { devices[holder]?.tokenHash = nil }
        if devices[holder]?.dueAt == nil { devices[holder]?.dueAt = now }
    }

    /// A token reported dead (`SQLiteDeviceStore.invalidate`): its holder releases it. Returns the holder's id.
    @discardableResult
    mutating func invalidate(tokenHash hash: String, now: Int64) -> String? {
        guard let holder = claims[hash] else { return nil }
        release(hash, from: holder, cause: .invalidated, now: now)
        return holder
    }

    /// What a worker loads (`DeviceStore.loadWork`).
    func work(_ id: String) -> Work? {
        guard let device = devices[id] else { return nil }
        let queue = ordered(id)
        var blocked = false
        if let head = queue.first, let hash = head.tokenHash {
            blocked = devices.contains { other, device in
                other != id && device.queue.contains { $0.intent.payload.kind == "release" && $0.tokenHash == hash }
            }
        }
        return Work(state: device.state, queue: queue.map(\.intent), moveBlocked: blocked, newestIntentId: queue.map(\.intent.id).max() ?? 0)
    }

    struct Work {
        var state: DeviceState
        var queue: [Intent]
        var moveBlocked: Bool
        var newestIntentId: Int64
    }

    enum Next: Equatable {
        case now
        case at(Int64)
        case whenWoken
    }

    /// One engine commit (`SQLiteCommit.apply`).
    mutating func commit(_ id: String, state: DeviceState, headId: Int64?, headProgress: Int? = nil, popHead: Bool = false, forget: Bool = false, next: Next, newestSeen: Int64, now: Int64) {
        guard devices[id] != nil else { return }
        if forget {
            // As the stores: a later write that is not a release starts the device afresh; releases go (the forget
            // removed the token at ME), their waiters are woken, and only the remaining intents' claims stay.
            let later = devices[id]!.queue.contains { $0.intent.id > newestSeen && $0.intent.payload.kind != "release" }
            devices[id]!.queue.removeAll { !later || $0.intent.id <= newestSeen || $0.intent.payload.kind == "release" }
            wakeWaiters(of: id, now: now)
            let kept = Set(devices[id]!.queue.compactMap(\.tokenHash))
            for (hash, holder) in claims where holder == id && !kept.contains(hash) { claims[hash] = nil }
            guard later else {
                devices[id] = nil
                return
            }
            let fresh = DeviceState(clientId: newClientId(), platform: state.platform)
            commit(id, state: fresh, headId: nil, next: .now, newestSeen: newestSeen, now: now)
            return
        }
        if let headId {
            if popHead {
                let kind = devices[id]!.queue.first { $0.intent.id == headId }?.intent.payload.kind
                devices[id]!.queue.removeAll { $0.intent.id == headId }
                if kind == "release" { wakeWaiters(of: id, now: now) }
            } else if let headProgress, let i = devices[id]!.queue.firstIndex(where: { $0.intent.id == headId }) {
                devices[id]!.queue[i].intent.progress = headProgress
            }
        }
        let pending = devices[id]!.queue.count
        let arrived = (devices[id]!.queue.map(\.intent.id).max() ?? 0) > newestSeen
        switch next {
        case .now: devices[id]!.dueAt = pending > 0 ? now : nil
        case .at(let t): devices[id]!.dueAt = pending > 0 ? t : nil
        case .whenWoken: devices[id]!.dueAt = (pending > 0 && arrived) ? now : nil
        }
        devices[id]!.state = state
    }

    private mutating func wakeWaiters(of holder: String, now: Int64) {
        let stillReleasing = devices[holder]?.queue.contains { $0.intent.payload.kind == "release" } ?? false
        for (id, device) in devices where device.queue.contains(where: { $0.waitsFor == holder }) {
            if device.dueAt == nil { devices[id]!.dueAt = now }
            if !stillReleasing {
                for i in devices[id]!.queue.indices where devices[id]!.queue[i].waitsFor == holder { devices[id]!.queue[i].waitsFor = nil }
            }
        }
    }

    /// What the device's status would say (the status document is the HTTP layer's; these are its fields).
    struct Status {
        var state: String
        /// The newest requested token (`tokenHash` of the status).
        var tokenHash: String?
        /// The token ME accepted (`steps.pushToken.tokenHash`).
        var sentTokenHash: String?
        var lastErrorMessage: String?
        var contactKind: String
    }

    func status(_ id: String) -> Status? {
        guard let d = devices[id] else { return nil }
        return Status(
            state: DeviceStateName.of(d.state, pending: d.queue.count).rawValue, tokenHash: d.tokenHash,
            sentTokenHash: d.state.pushTokenSent?.tokenHash, lastErrorMessage: d.state.lastError?.message,
            contactKind: d.state.linkedContact?.kind ?? "none")
    }
}
