import Foundation
import PostgresNIO
import Workflow

/// One engine step in one PostgreSQL transaction, with the same rules as `SQLiteCommit`, fenced by the
/// lease: the device row is locked first, and when `update.owner` no longer holds the lease nothing changes
/// and `StorageError.leaseLost` is thrown. A fenced commit renews the lease.
struct PostgresCommit {
    let tx: PGTx
    let key: DeviceKey
    let now: Date
    let sealer: Sealer
    let leaseMs: Int64

    func apply(_ update: WorkUpdate) async throws {
        let rows = try await tx.rows(PGStatement.LeaseForUpdate.self, "SELECT lease_owner FROM devices WHERE app = \(key.appCode) AND device_id = \(key.deviceId) FOR UPDATE")
        if let owner = update.owner {
            guard let row = rows.first, try row.decode(String?.self) == owner else { throw StorageError.leaseLost(key.description) }
        }
        try await applyLocked(update)
    }

    private func applyLocked(_ update: WorkUpdate) async throws {
        let nowMs = Codec.ms(now)
        if update.forget {
            try await forget(update)
            return
        }
        if let id = update.headId {
            if update.popHead {
                let kind = try await tx.rows(PGStatement.IntentKind.self, "SELECT kind FROM intents WHERE id = \(id)").first.map { try $0.decode(String.self) }
                try await PostgresRows.deleteIntents(tx, key, .id(id))
                if kind == "release" { try await wakeWaiters() }
            } else if let progress = update.headProgress {
                try await tx.exec(PGStatement.IntentProgress.self, "UPDATE intents SET progress = \(progress) WHERE id = \(id)")
            }
        }
        // The pending count, and whether intents arrived after the worker's load, in one round trip.
        // With what backends last heard of the device and the reason remembered for a token that left.
        let counted = try await tx.rows(PGStatement.CountAndNewest.self, """
            SELECT COUNT(*), COALESCE(MAX(id), 0),
                (SELECT notified FROM devices WHERE app = \(key.appCode) AND device_id = \(key.deviceId)),
                (SELECT unregister_reason FROM devices WHERE app = \(key.appCode) AND device_id = \(key.deviceId)),
                (SELECT state FROM devices WHERE app = \(key.appCode) AND device_id = \(key.deviceId))
            FROM intents WHERE app = \(key.appCode) AND device_id = \(key.deviceId)
            """)
        var (count, newest, notified, oldReason, oldState): (Int64, Int64, String?, String?, String?) = (0, 0, nil, nil, nil)
        if let row = counted.first { (count, newest, notified, oldReason, oldState) = try row.decode((Int64, Int64, String?, String?, String?).self) }
        let pending = Int(count)
        let arrived = newest > update.newestIntentIdSeen
        let due = update.next.dueAt(pending: pending, arrived: arrived, nowMs: nowMs)
        let state = DeviceStateName.of(update.state, pending: pending)
        let sealed = try Codec.seal(update.state, sealer)
        let told = WebhookRouting.step(
            notified: notified, reason: oldReason, state: state, device: update.state, reasonNow: update.notify?.unregisterReason)
        let (toldNotified, toldReason) = (told.notified, told.reason)
        let renew = update.owner != nil
        let release = update.releaseLease
        try await tx.exec(PGStatement.CommitStep.self, """
            UPDATE devices SET data = \(sealed), state = \(state.rawValue), pending = \(pending), due_at = \(due),
                client_id = \(update.state.clientId), updated_at = \(nowMs), notified = \(toldNotified), unregister_reason = \(toldReason),
                lease_owner = CASE WHEN \(release) THEN NULL ELSE lease_owner END,
                lease_until = CASE WHEN \(release) THEN NULL WHEN \(renew) AND lease_owner IS NOT NULL THEN \(nowMs + leaseMs) ELSE lease_until END
            WHERE app = \(key.appCode) AND device_id = \(key.deviceId)
            """)
        try await PostgresRows.recordStateChange(tx, key, from: oldState, to: state.rawValue, now: now)
        if let routing = update.notify, let event = told.event {
            try await enqueueWebhooks(event, routing: routing, reason: told.eventReason, snapshot: true)
        }
    }

    /// One outbox row per endpoint that takes `event`, with the device as this transaction leaves it (none for
    /// `device.deleted`: its body is the app code and device id).
    private func enqueueWebhooks(_ event: String, routing: WebhookRouting, reason: String?, snapshot: Bool) async throws {
        let targets = routing.endpoints.filter { $0.events.contains(event) }
        guard !targets.isEmpty else { return }
        var sealed: Data?
        if snapshot, let row = try await PostgresRows.device(tx, key, sealer) {
            sealed = try Codec.sealSnapshot(row.snapshot, sealer)
        }
        let nowMs = Codec.ms(now)
        for endpoint in targets {
            let msgId = "msg_" + UUID().uuidString.lowercased()
            try await tx.exec(PGStatement.InsertWebhook.self, """
                INSERT INTO webhook_outbox(msg_id, app, device_id, endpoint, event, reason, occurred_at, snapshot, next_attempt_at)
                VALUES (\(msgId), \(key.appCode), \(key.deviceId), \(endpoint.id), \(event), \(reason), \(nowMs), \(sealed), \(nowMs))
                """)
        }
    }

    /// A device whose release finished may now send the token it waited for.
    private func wakeWaiters() async throws {
        let (app, device) = (key.appCode, key.deviceId)
        try await tx.exec(PGStatement.WakeWaitingDevices.self, """
            UPDATE devices SET due_at = \(Codec.ms(now)) WHERE app = \(app) AND due_at IS NULL
            AND device_id IN (SELECT device_id FROM intents WHERE app = \(app) AND waits_for = \(device))
            """)
        try await tx.exec(PGStatement.ClearWaitsFor.self, """
            UPDATE intents SET waits_for = NULL WHERE app = \(app) AND waits_for = \(device)
            AND NOT EXISTS (SELECT 1 FROM intents r WHERE r.app = \(app) AND r.device_id = \(device) AND r.kind = 'release')
            """)
    }

    /// The token is gone at ME: forget the device (its intents, claims and history), and tell backends
    /// `device.deleted`. A write the backend sent after the forget (an intent newer than `newestIntentIdSeen`, the
    /// forget's own, that is not a release: a release only takes back a token the forget removed already) starts the
    /// device afresh with it: a new client, nothing heard by backends yet, and only the claims of its own intents.
    private func forget(_ update: WorkUpdate) async throws {
        let (app, device) = (key.appCode, key.deviceId)
        let newestSeen = update.newestIntentIdSeen
        let later = try await tx.rows(PGStatement.IntentsAfter.self, """
            SELECT EXISTS(SELECT 1 FROM intents WHERE app = \(app) AND device_id = \(device) AND id > \(newestSeen) AND kind <> 'release')
            """).first.map { try $0.decode(Bool.self) } ?? false
        try await PostgresRows.deleteIntents(tx, key, later ? .forgotten(upTo: newestSeen) : .all)
        try await wakeWaiters()
        try await tx.exec(PGStatement.DeleteClaimsButQueued.self, """
            DELETE FROM token_claims WHERE app = \(app) AND device_id = \(device)
            AND token_hash NOT IN (SELECT token_hash FROM intents WHERE app = \(app) AND device_id = \(device) AND token_hash IS NOT NULL)
            """)
        try await tx.exec(PGStatement.DeleteHistory.self, "DELETE FROM device_history WHERE app = \(app) AND device_id = \(device)")
        if let routing = update.notify { try await enqueueWebhooks("device.deleted", routing: routing, reason: nil, snapshot: false) }
        guard later else {
            try await tx.exec(PGStatement.DeleteDevice.self, "DELETE FROM devices WHERE app = \(app) AND device_id = \(device)")
            return
        }
        try await tx.exec(PGStatement.ResetNotified.self, """
            UPDATE devices SET notified = NULL, unregister_reason = NULL WHERE app = \(app) AND device_id = \(device)
            """)
        let fresh = DeviceState(clientId: UUID().uuidString.lowercased(), platform: update.state.platform)
        try await applyLocked(WorkUpdate(state: fresh, headId: nil, next: .now, newestIntentIdSeen: newestSeen, owner: update.owner, releaseLease: update.releaseLease))
    }
}
