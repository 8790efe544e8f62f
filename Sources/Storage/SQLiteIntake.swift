import Foundation
import GRDB
import Workflow

/// One API write, carried out in one write transaction: read what the rules need, decide with the
/// pure `Intake`, then store the intent and its side effects (collapse, token move, claims).
struct SQLiteIntake {
    let db: Database
    let key: DeviceKey
    let now: Date
    let sealer: Sealer
    /// The write is a backend's: the device was seen now (`last_seen_at`). The retention sweep's writes are not.
    var seen = true
    /// Only for a device whose newest requested contact is still this one (`devices.contact_key`): otherwise nothing is
    /// stored and the answer is `.unknownDevice` (a contact's logout or erase that a login of someone else overtook).
    var requiredContactKey: String?

    private func read(_ write: DeviceWrite, policy: AppPolicy) throws -> IntakeReads {
        let device = try SQLiteRows.device(db, key, sealer)
        let queued = try device == nil ? [] : SQLiteRows.queued(db, key, sealer).map(\.intent)
        var holder: DeviceKey?
        if let token = Intake.token(of: write), let h = try Self.holder(db, app: key.appCode, tokenHash: token.tokenHash), h != key {
            holder = h
        }
        return IntakeReads(write, device: device, queued: queued, holder: holder, policy: policy)
    }

    /// The answer to a write that changes nothing (deduplicated, unknown device), or nil when it must be
    /// stored. Safe on a read snapshot: what it answers is what `accept` would answer at that moment.
    func unchangedOutcome(_ write: DeviceWrite, policy: AppPolicy) throws -> AcceptResult? {
        try read(write, policy: policy).unchangedOutcome()
    }

    func accept(_ write: DeviceWrite, policy: AppPolicy, limits: QueueLimits, newClientId: String) throws -> AcceptResult {
        if let requiredContactKey, try String.fetchOne(
            db.cachedStatement(sql: "SELECT contact_key FROM devices WHERE app = ? AND device_id = ?"), arguments: [key.appCode, key.deviceId]
        ) != requiredContactKey {
            return .unknownDevice
        }
        let reads = try read(write, policy: policy)
        let device = reads.device
        let token = Intake.token(of: write)
        guard case .enqueue(let payload, let collapse, let takeFrom) = reads.decision else {
            return try reads.unchangedOutcome() ?? .unknownDevice
        }
        let (collapsed, added) = QueueLimits.growth(
            queued: reads.queued, state: device?.state, payload: payload, collapse: collapse, movesToken: takeFrom != nil)
        if added > 0, let full = limits.refusal(adding: added, counts: try SQLiteRows.queuedCounts(db, app: key.appCode)) { return full }
        var row: SQLiteRows.DeviceRow
        if let device {
            row = device
        } else {
            row = try create(write: write, clientId: newClientId)
        }
        try SQLiteRows.apply(collapsed, db, key, now: now, sealer: sealer)
        if let takeFrom, let token { try release(token.tokenHash, from: takeFrom, cause: .moved) }
        try SQLiteRows.insertIntent(db, key, payload, tokenHash: token?.tokenHash, waitsFor: takeFrom?.deviceId, now: now, sealer: sealer)
        try updateClaims(for: write, token: token, state: device?.state)
        // The row as the transaction leaves it: this write touches only registration columns, so the
        // engine's state is the one just read (or created).
        try touch(write: write, row: &row, created: device == nil)
        return .accepted(row.snapshot)
    }

    private func create(write: DeviceWrite, clientId: String) throws -> SQLiteRows.DeviceRow {
        guard let (state, columns) = Intake.newDevice(for: write, generatedClientId: clientId) else {
            throw StorageError.corrupt("only a start or a token creates a device")
        }
        let (provider, platform, startClientId) = (columns.provider, columns.platform, state.clientId)
        try db.cachedStatement(sql: """
            INSERT INTO devices(app, device_id, client_id, provider, platform, token_hash, state, pending, due_at, created_at, updated_at, data, last_seen_at)
            VALUES (?, ?, ?, ?, ?, NULL, 'pending', 0, NULL, ?, ?, ?, ?)
            """).execute(arguments: [
                key.appCode, key.deviceId, startClientId, provider, platform, Codec.ms(now), Codec.ms(now), try Codec.seal(state, sealer), Codec.ms(now),
            ])
        return SQLiteRows.DeviceRow(
            key: key, provider: provider, platform: platform, tokenHash: nil, pending: 0, dueAt: nil, updatedAt: Codec.ms(now), state: state,
            lastSeenAt: Codec.ms(now))
    }

    /// The token with hash `tokenHash` leaves `holder` (it moves to this device, or it was reported dead): its
    /// queued intents for that token go, and a release is queued ahead of everything else there, which a push-token
    /// step of that token on any other device waits for.
    private func release(_ tokenHash: String, from holder: DeviceKey, cause: ReleaseCause) throws {
        let held = try SQLiteRows.device(db, holder, sealer)
        let move = Intake.release(
            tokenHash: tokenHash, cause: cause, state: held?.state, queued: try SQLiteRows.queued(db, holder, sealer).map(\.intent))
        try SQLiteRows.apply(move.edits, db, holder, now: now, sealer: sealer)
        try SQLiteRows.insertIntent(db, holder, move.release, tokenHash: tokenHash, waitsFor: nil, now: now, sealer: sealer)
        try db.execute(
            sql: "DELETE FROM token_claims WHERE app = ? AND token_hash = ? AND device_id = ?",
            arguments: [holder.appCode, tokenHash, holder.deviceId])
        try db.execute(
            sql: """
                UPDATE devices SET
                    token_hash = CASE WHEN token_hash = ? THEN NULL ELSE token_hash END,
                    pending = (SELECT COUNT(*) FROM intents i WHERE i.app = devices.app AND i.device_id = devices.device_id),
                    due_at = COALESCE(due_at, ?), updated_at = ?
                WHERE app = ? AND device_id = ?
                """,
            arguments: [tokenHash, Codec.ms(now), Codec.ms(now), holder.appCode, holder.deviceId])
        try refreshStateColumn(holder, before: held.map { DeviceStateName.of($0.state, pending: $0.pending).rawValue })
    }

    /// `key` holds the token with hash `tokenHash`, which was reported dead or expired (`cause`): it is released there
    /// as on a move. Returns the device as the write leaves it.
    func release(_ tokenHash: String, cause: ReleaseCause) throws -> DeviceSnapshot? {
        try release(tokenHash, from: key, cause: cause)
        return try SQLiteRows.device(db, key, sealer)?.snapshot
    }

    /// The device of `app` that holds the token with hash `tokenHash` (sent or queued), if any.
    static func holder(_ db: Database, app: String, tokenHash: String) throws -> DeviceKey? {
        try String.fetchOne(
            db.cachedStatement(sql: "SELECT device_id FROM token_claims WHERE app = ? AND token_hash = ?"),
            arguments: [app, tokenHash]
        ).map { DeviceKey(appCode: app, deviceId: $0) }
    }

    private func updateClaims(for write: DeviceWrite, token: TokenRef?, state: DeviceState?) throws {
        switch write {
        case .setToken, .start:
            guard let token else { return }
            try dropClaims(keeping: state)
            try db.cachedStatement(sql: "INSERT OR REPLACE INTO token_claims(app, token_hash, device_id) VALUES (?, ?, ?)")
                .execute(arguments: [key.appCode, token.tokenHash, key.deviceId])
        case .removeToken, .forget:
            try dropClaims(keeping: state)
        default:
            break
        }
    }

    /// Drops this device's claims but those on tokens ME holds on its client (`Intake.claimsKept`).
    private func dropClaims(keeping state: DeviceState?) throws {
        let kept = Intake.claimsKept(by: state)
        try db.cachedStatement(sql: "DELETE FROM token_claims WHERE app = ? AND device_id = ? AND token_hash NOT IN (?, ?)")
            .execute(arguments: [key.appCode, key.deviceId, kept.first ?? "", kept.dropFirst().first ?? ""])
    }

    /// Registration columns follow the newest request; the device becomes due (a failed one too:
    /// a new intent retries its failed step), but a backoff in progress is kept.
    ///
    /// `row` is the device as it was before this write; it leaves as the transaction leaves it. The state
    /// column follows from the engine's state (which an API write never changes) and the new pending count.
    private func touch(write: DeviceWrite, row: inout SQLiteRows.DeviceRow, created: Bool) throws {
        let pending = try SQLiteRows.pendingCount(db, key)
        let nowMs = Codec.ms(now)
        let (before, state) = row.touch(by: write, pending: pending, nowMs: nowMs, seen: seen)
        let contact = ContactKey.after(write.payload, sealer: sealer)
        // A backend's write also clears the retention sweep's mark: the device is alive again.
        try db.cachedStatement(sql: """
            UPDATE devices SET pending = ?, due_at = COALESCE(due_at, ?), updated_at = ?, provider = ?, platform = ?, token_hash = ?, state = ?,
                last_seen_at = MAX(last_seen_at, ?), expiry = CASE WHEN ? THEN 0 ELSE expiry END,
                contact_key = CASE WHEN ? THEN ? ELSE contact_key END
            WHERE app = ? AND device_id = ?
            """).execute(arguments: [
                pending, nowMs, nowMs, row.provider, row.platform, row.tokenHash, state, row.lastSeenAt, seen,
                contact != nil, contact ?? nil, key.appCode, key.deviceId,
            ])
        try SQLiteRows.recordStateChange(db, key, from: created ? nil : before, to: state, now: now)  // a new device's first state is no change
    }

    /// `before`: the state column before this write, for the device's history.
    private func refreshStateColumn(_ key: DeviceKey, before: String?) throws {
        guard let row = try SQLiteRows.device(db, key, sealer) else { return }
        let name = DeviceStateName.of(row.state, pending: row.pending)
        try db.execute(
            sql: "UPDATE devices SET state = ? WHERE app = ? AND device_id = ?",
            arguments: [name.rawValue, key.appCode, key.deviceId])
        try SQLiteRows.recordStateChange(db, key, from: before, to: name.rawValue, now: now)
    }
}
