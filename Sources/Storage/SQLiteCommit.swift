import Foundation
import GRDB
import Workflow

/// One engine step, committed in one write transaction. Touches only the engine's columns
/// (`data`, `state`, `due_at`) and the head intent, so API writes made meanwhile survive.
struct SQLiteCommit {
    let db: Database
    let key: DeviceKey
    let now: Date
    let sealer: Sealer

    /// Must run in a transaction or savepoint of its own: a fenced commit that finds its lease gone throws
    /// `leaseLost` after its first writes, which the caller's rollback undoes.
    /// - Returns: whether the device's row holds `update.state` now (false when it was forgotten or is gone).
    @discardableResult
    func apply(_ update: WorkUpdate) throws -> Bool {
        if update.forget {
            if let owner = update.owner {
                let holder = try String.fetchOne(
                    db.cachedStatement(sql: "SELECT lease_owner FROM devices WHERE app = ? AND device_id = ?"), arguments: [key.appCode, key.deviceId])
                guard holder == owner else { throw StorageError.leaseLost(key.description) }
            }
            try forget(update)
            return false
        }
        return try applyStep(update)
    }

    @discardableResult
    private func applyStep(_ update: WorkUpdate) throws -> Bool {
        let nowMs = Codec.ms(now)
        if let id = update.headId {
            if update.popHead {
                let kind = try String.fetchOne(db.cachedStatement(sql: "SELECT kind FROM intents WHERE id = ?"), arguments: [id])
                try SQLiteRows.deleteIntents(db, key, where: "id = ?", [id])
                if kind == "release" { try wakeWaiters() }
            } else if let progress = update.headProgress {
                try db.cachedStatement(sql: "UPDATE intents SET progress = ? WHERE id = ?").execute(arguments: [progress, id])
            }
        }
        // The queue left behind, whether intents arrived since the worker's load, what backends last heard of the
        // device, the reason remembered for a token that left and the state the row had (for the history), in one
        // statement.
        let counts = try Row.fetchOne(
            db.cachedStatement(sql: """
                SELECT COUNT(*) AS pending, COALESCE(MAX(id), 0) > ? AS arrived,
                    (SELECT notified FROM devices WHERE app = ? AND device_id = ?) AS notified,
                    (SELECT unregister_reason FROM devices WHERE app = ? AND device_id = ?) AS reason,
                    (SELECT state FROM devices WHERE app = ? AND device_id = ?) AS old_state
                FROM intents WHERE app = ? AND device_id = ?
                """),
            arguments: [
                update.newestIntentIdSeen, key.appCode, key.deviceId, key.appCode, key.deviceId, key.appCode, key.deviceId,
                key.appCode, key.deviceId,
            ])
        let pending: Int = counts?["pending"] ?? 0
        let arrived: Bool = counts?["arrived"] ?? false
        let oldState: String? = counts?["old_state"]
        let due = update.next.dueAt(pending: pending, arrived: arrived, nowMs: nowMs)
        let state = DeviceStateName.of(update.state, pending: pending)
        let told = WebhookRouting.step(
            notified: counts?["notified"], reason: counts?["reason"], state: state, device: update.state,
            reasonNow: update.notify?.unregisterReason)
        try db.cachedStatement(sql: """
            UPDATE devices SET data = ?, state = ?, pending = ?, due_at = ?, client_id = ?, updated_at = ?, notified = ?, unregister_reason = ?,
                lease_owner = CASE WHEN ? THEN NULL ELSE lease_owner END, lease_until = CASE WHEN ? THEN NULL ELSE lease_until END
            WHERE app = ? AND device_id = ? AND (? IS NULL OR lease_owner = ?)
            """).execute(arguments: [
                try Codec.seal(update.state, sealer), state.rawValue, pending, due, update.state.clientId, nowMs, told.notified, told.reason,
                update.releaseLease, update.releaseLease, key.appCode, key.deviceId, update.owner, update.owner,
            ])
        // The fence: the row is updated only while `owner` holds the lease (the intent writes above roll back).
        let updated = db.changesCount > 0
        if update.owner != nil && !updated { throw StorageError.leaseLost(key.description) }
        if updated { try SQLiteRows.recordStateChange(db, key, from: oldState, to: state.rawValue, now: now) }
        if updated, let routing = update.notify, let event = told.event {
            try enqueueWebhooks(event, routing: routing, reason: told.eventReason, snapshot: true)
        }
        return updated
    }

    /// A device whose release finished may now send the token it waited for.
    private func wakeWaiters() throws {
        try db.execute(
            sql: """
                UPDATE devices SET due_at = ? WHERE app = ? AND due_at IS NULL
                AND device_id IN (SELECT device_id FROM intents WHERE app = ? AND waits_for = ?)
                """,
            arguments: [Codec.ms(now), key.appCode, key.appCode, key.deviceId])
        try db.execute(
            sql: "UPDATE intents SET waits_for = NULL WHERE app = ? AND waits_for = ? AND NOT EXISTS (SELECT 1 FROM intents r WHERE r.app = ? AND r.device_id = ? AND r.kind = 'release')",
            arguments: [key.appCode, key.deviceId, key.appCode, key.deviceId])
    }

    /// The token is gone at ME: forget the device (its intents, claims and history), and tell backends
    /// `device.deleted`. A write the backend sent after the forget (an intent newer than `newestIntentIdSeen`, the
    /// forget's own, that is not a release: a release only takes back a token the forget removed already) starts the
    /// device afresh with it: a new client, nothing heard by backends yet, and only the claims of its own intents.
    private func forget(_ update: WorkUpdate) throws {
        let (app, device) = (key.appCode, key.deviceId)
        let newestSeen = update.newestIntentIdSeen
        let later = try Bool.fetchOne(
            db, sql: "SELECT EXISTS(SELECT 1 FROM intents WHERE app = ? AND device_id = ? AND id > ? AND kind <> 'release')",
            arguments: [app, device, newestSeen]) ?? false
        if later {
            try SQLiteRows.deleteIntents(db, key, where: "(id <= ? OR kind = 'release')", [newestSeen])
        } else {
            try SQLiteRows.deleteIntents(db, key, where: "1 = 1")
        }
        try wakeWaiters()
        try db.execute(
            sql: """
                DELETE FROM token_claims WHERE app = ? AND device_id = ?
                AND token_hash NOT IN (SELECT token_hash FROM intents WHERE app = ? AND device_id = ? AND token_hash IS NOT NULL)
                """,
            arguments: [app, device, app, device])
        try db.execute(sql: "DELETE FROM device_history WHERE app = ? AND device_id = ?", arguments: [app, device])
        if let routing = update.notify { try enqueueWebhooks("device.deleted", routing: routing, reason: nil, snapshot: false) }
        guard later else {
            try db.execute(sql: "DELETE FROM devices WHERE app = ? AND device_id = ?", arguments: [app, device])
            return
        }
        try db.execute(
            sql: "UPDATE devices SET notified = NULL, unregister_reason = NULL WHERE app = ? AND device_id = ?", arguments: [app, device])
        let fresh = DeviceState(clientId: UUID().uuidString.lowercased(), platform: update.state.platform)
        try applyStep(WorkUpdate(state: fresh, headId: nil, next: .now, newestIntentIdSeen: newestSeen, owner: update.owner, releaseLease: update.releaseLease))
    }

    /// One outbox row per endpoint that takes `event`, with the device as this transaction leaves it (none for
    /// `device.deleted`: its body is the app code and device id).
    private func enqueueWebhooks(_ event: String, routing: WebhookRouting, reason: String?, snapshot: Bool) throws {
        let targets = routing.endpoints.filter { $0.events.contains(event) }
        guard !targets.isEmpty else { return }
        var sealed: Data?
        if snapshot, let row = try SQLiteRows.device(db, key, sealer) {
            sealed = try Codec.sealSnapshot(row.snapshot, sealer)
        }
        let nowMs = Codec.ms(now)
        for endpoint in targets {
            try db.cachedStatement(sql: """
                INSERT INTO webhook_outbox(msg_id, app, device_id, endpoint, event, reason, occurred_at, snapshot, next_attempt_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                """).execute(arguments: [
                    "msg_" + UUID().uuidString.lowercased(), key.appCode, key.deviceId, endpoint.id, event, reason, nowMs, sealed, nowMs,
                ])
        }
    }
}
