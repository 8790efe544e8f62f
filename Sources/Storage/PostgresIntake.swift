import Foundation
import PostgresNIO
import Workflow

/// One API write in one PostgreSQL transaction, with the same rules as `SQLiteIntake`.
///
/// Writes of several instances serialise: first an advisory lock on the token hash (so two devices cannot
/// both take one token), then advisory locks on this device and the token's holder in key order (a device
/// that does not exist yet has no row to lock), then their rows `FOR UPDATE` (which also waits for an
/// engine commit in progress on them). Every transaction takes these locks in that order.
struct PostgresIntake {
    let tx: PGTx
    let key: DeviceKey
    let now: Date
    let sealer: Sealer
    /// The write is a backend's: the device was seen now (`last_seen_at`). The retention sweep's writes are not.
    var seen = true
    /// Only for a device whose newest requested contact is still this one (`devices.contact_key`), checked under the
    /// locks: otherwise nothing is stored and the answer is `.unknownDevice`.
    var requiredContactKey: String?

    private func read(_ write: DeviceWrite, token: TokenRef?, policy: AppPolicy) async throws -> IntakeReads {
        let device = try await PostgresRows.device(tx, key, sealer)
        let queued = device == nil ? [] : try await PostgresRows.queued(tx, key, sealer).map(\.intent)
        var holderKey: DeviceKey?
        if let token, let h = try await holder(token), h != key { holderKey = h }
        return IntakeReads(write, device: device, queued: queued, holder: holderKey, policy: policy)
    }

    /// The answer to a write that changes nothing (deduplicated, unknown device), or nil when it must be
    /// stored; read without locks in a read-only snapshot, as `SQLiteIntake.unchangedOutcome` does. Such a write
    /// takes no lock and writes no WAL (a `FOR UPDATE` would, and its commit would wait for a flush).
    func unchangedOutcome(_ write: DeviceWrite, policy: AppPolicy) async throws -> AcceptResult? {
        try await read(write, token: Intake.token(of: write), policy: policy).unchangedOutcome()
    }

    func accept(_ write: DeviceWrite, policy: AppPolicy, limits: QueueLimits, newClientId: String) async throws -> AcceptResult {
        let token = Intake.token(of: write)
        var lockKeys = [key]
        if let token {
            try await tx.exec(PGStatement.LockKey.self, "SELECT pg_advisory_xact_lock(hashtextextended(\("claim:\(key.appCode):\(token.tokenHash)"), 0))")
            if let h = try await holder(token), h != key { lockKeys.append(h) }
        }
        lockKeys.sort { $0.deviceId < $1.deviceId }
        for k in lockKeys {
            try await tx.exec(PGStatement.LockKey.self, "SELECT pg_advisory_xact_lock(hashtextextended(\("device:\(k.appCode):\(k.deviceId)"), 0))")
        }
        for k in lockKeys {
            try await tx.exec(PGStatement.LockDeviceRow.self, "SELECT 1 FROM devices WHERE app = \(k.appCode) AND device_id = \(k.deviceId) FOR UPDATE")
        }
        if let requiredContactKey {
            let current = try await tx.rows(PGStatement.ContactKeyOf.self, "SELECT contact_key FROM devices WHERE app = \(key.appCode) AND device_id = \(key.deviceId)")
                .first.flatMap { try $0.decode(String?.self) }
            guard current == requiredContactKey else { return .unknownDevice }
        }
        // Read again under the locks: the holder may have dropped the token meanwhile (removal, forget).
        let reads = try await read(write, token: token, policy: policy)
        let device = reads.device
        guard case .enqueue(let payload, let collapse, let takeFrom) = reads.decision else {
            return try reads.unchangedOutcome() ?? .unknownDevice
        }
        let (collapsed, added) = QueueLimits.growth(
            queued: reads.queued, state: device?.state, payload: payload, collapse: collapse, movesToken: takeFrom != nil)
        if added > 0, let full = limits.refusal(adding: added, counts: try await PostgresRows.queuedCounts(tx, app: key.appCode)) { return full }
        var row: PostgresRows.DeviceRow
        if let device {
            row = device
        } else {
            row = try await create(write: write, clientId: newClientId)
        }
        try await PostgresRows.apply(collapsed, tx, key, now: now, sealer: sealer)
        if let takeFrom, let token { try await release(token.tokenHash, from: takeFrom, cause: .moved) }
        try await PostgresRows.insertIntent(tx, key, payload, tokenHash: token?.tokenHash, waitsFor: takeFrom?.deviceId, now: now, sealer: sealer)
        try await updateClaims(for: write, token: token, state: device?.state)
        // The row as the transaction leaves it: an API write changes only registration columns, so the
        // engine's state is the one read under the lock (or created).
        try await touch(write: write, row: &row, created: device == nil)
        // Other instances' engines look for due work now (delivered at commit).
        try await tx.exec(PGStatement.Notify.self, "SELECT pg_notify(\(PostgresDeviceStore.workChannel), '')")
        return .accepted(row.snapshot)
    }

    private func holder(_ token: TokenRef) async throws -> DeviceKey? {
        try await Self.holder(tx, app: key.appCode, tokenHash: token.tokenHash)
    }

    /// The device of `app` that holds the token with hash `tokenHash` (sent or queued), if any.
    static func holder(_ tx: PGTx, app: String, tokenHash: String) async throws -> DeviceKey? {
        try await tx.rows(PGStatement.TokenHolder.self, "SELECT device_id FROM token_claims WHERE app = \(app) AND token_hash = \(tokenHash)")
            .first.map { DeviceKey(appCode: app, deviceId: try $0.decode(String.self)) }
    }

    private func create(write: DeviceWrite, clientId: String) async throws -> PostgresRows.DeviceRow {
        guard let (state, columns) = Intake.newDevice(for: write, generatedClientId: clientId) else {
            throw StorageError.corrupt("only a start or a token creates a device")
        }
        let (provider, platform, startClientId) = (columns.provider, columns.platform, state.clientId)
        let sealed = try Codec.seal(state, sealer)
        let nowMs = Codec.ms(now)
        try await tx.exec(PGStatement.InsertDevice.self, """
            INSERT INTO devices(app, device_id, client_id, provider, platform, token_hash, state, pending, due_at, created_at, updated_at, data, last_seen_at)
            VALUES (\(key.appCode), \(key.deviceId), \(startClientId), \(provider), \(platform), NULL, 'pending', 0, NULL, \(nowMs), \(nowMs), \(sealed), \(nowMs))
            """)
        return PostgresRows.DeviceRow(
            key: key, provider: provider, platform: platform, tokenHash: nil, pending: 0, dueAt: nil, updatedAt: nowMs, state: state, lastSeenAt: nowMs)
    }

    /// The token with hash `tokenHash` leaves `holder` (it moves to this device, or it was reported dead): its
    /// queued intents for that token go, and a release is queued ahead of everything else there, which a push-token
    /// step of that token on any other device waits for.
    private func release(_ tokenHash: String, from holder: DeviceKey, cause: ReleaseCause) async throws {
        let nowMs = Codec.ms(now)
        let held = try await PostgresRows.device(tx, holder, sealer)
        let move = Intake.release(
            tokenHash: tokenHash, cause: cause, state: held?.state, queued: try await PostgresRows.queued(tx, holder, sealer).map(\.intent))
        try await PostgresRows.apply(move.edits, tx, holder, now: now, sealer: sealer)
        try await PostgresRows.insertIntent(tx, holder, move.release, tokenHash: tokenHash, waitsFor: nil, now: now, sealer: sealer)
        try await tx.exec(PGStatement.DeleteClaimOfHolder.self, "DELETE FROM token_claims WHERE app = \(holder.appCode) AND token_hash = \(tokenHash) AND device_id = \(holder.deviceId)")
        try await tx.exec(PGStatement.ReleaseTokenAtHolder.self, """
            UPDATE devices SET
                token_hash = CASE WHEN token_hash = \(tokenHash) THEN NULL ELSE token_hash END,
                pending = (SELECT COUNT(*) FROM intents i WHERE i.app = devices.app AND i.device_id = devices.device_id),
                due_at = COALESCE(due_at, \(nowMs)), updated_at = \(nowMs)
            WHERE app = \(holder.appCode) AND device_id = \(holder.deviceId)
            """)
        try await refreshStateColumn(holder, before: held.map { DeviceStateName.of($0.state, pending: $0.pending).rawValue })
    }

    /// The token with hash `tokenHash` of `app` was reported dead: the device that holds it (sent or queued)
    /// releases it, as on a move. Takes the locks in the order of `accept` (the token hash, then the device and its
    /// row); the holder is read again under them. Returns the holder as the write leaves it.
    static func invalidate(_ tx: PGTx, app: String, tokenHash: String, now: Date, sealer: Sealer) async throws -> DeviceSnapshot? {
        try await release(tx, app: app, tokenHash: tokenHash, cause: .invalidated, now: now, sealer: sealer)
    }

    /// `invalidate` for any cause.
    static func release(_ tx: PGTx, app: String, tokenHash: String, cause: ReleaseCause, now: Date, sealer: Sealer) async throws -> DeviceSnapshot? {
        try await tx.exec(PGStatement.LockKey.self, "SELECT pg_advisory_xact_lock(hashtextextended(\("claim:\(app):\(tokenHash)"), 0))")
        guard let first = try await holder(tx, app: app, tokenHash: tokenHash) else { return nil }
        try await tx.exec(PGStatement.LockKey.self, "SELECT pg_advisory_xact_lock(hashtextextended(\("device:\(app):\(first.deviceId)"), 0))")
        try await tx.exec(PGStatement.LockDeviceRow.self, "SELECT 1 FROM devices WHERE app = \(app) AND device_id = \(first.deviceId) FOR UPDATE")
        // The holder's own removal or forget may have dropped the claim before the device lock was ours.
        guard let holder = try await holder(tx, app: app, tokenHash: tokenHash), holder == first else { return nil }
        let intake = PostgresIntake(tx: tx, key: holder, now: now, sealer: sealer)
        try await intake.release(tokenHash, from: holder, cause: cause)
        try await tx.exec(PGStatement.Notify.self, "SELECT pg_notify(\(PostgresDeviceStore.workChannel), '')")
        return try await PostgresRows.device(tx, holder, sealer)?.snapshot
    }

    private func updateClaims(for write: DeviceWrite, token: TokenRef?, state: DeviceState?) async throws {
        switch write {
        case .setToken, .start:
            guard let token else { return }
            try await dropClaims(keeping: state)
            try await tx.exec(PGStatement.InsertClaim.self, """
                INSERT INTO token_claims(app, token_hash, device_id) VALUES (\(key.appCode), \(token.tokenHash), \(key.deviceId))
                ON CONFLICT (app, token_hash) DO UPDATE SET device_id = EXCLUDED.device_id
                """)
        case .removeToken, .forget:
            try await dropClaims(keeping: state)
        default:
            break
        }
    }

    /// Drops this device's claims but those on tokens ME holds on its client (`Intake.claimsKept`).
    private func dropClaims(keeping state: DeviceState?) async throws {
        let kept = Intake.claimsKept(by: state)
        let (first, second) = (kept.first ?? "", kept.dropFirst().first ?? "")
        try await tx.exec(PGStatement.DeleteClaimsExcept.self, """
            DELETE FROM token_claims WHERE app = \(key.appCode) AND device_id = \(key.deviceId) AND token_hash NOT IN (\(first), \(second))
            """)
    }

    /// Registration columns follow the newest request; the device becomes due, a backoff in progress is kept.
    /// `row` is the device before this write and leaves as the transaction leaves it; the state column follows
    /// from the engine's state (which an API write never changes) and the new pending count.
    private func touch(write: DeviceWrite, row: inout PostgresRows.DeviceRow, created: Bool) async throws {
        let pending = try await PostgresRows.pendingCount(tx, key)
        let nowMs = Codec.ms(now)
        let (before, state) = row.touch(by: write, pending: pending, nowMs: nowMs, seen: seen)
        let contact = ContactKey.after(write.payload, sealer: sealer)
        // A backend's write also clears the retention sweep's mark: the device is alive again.
        try await tx.exec(PGStatement.Touch.self, """
            UPDATE devices SET pending = \(pending), due_at = COALESCE(due_at, \(nowMs)), updated_at = \(nowMs),
                provider = \(row.provider), platform = \(row.platform), token_hash = \(row.tokenHash), state = \(state),
                last_seen_at = GREATEST(last_seen_at, \(row.lastSeenAt)), expiry = CASE WHEN \(seen) THEN 0 ELSE expiry END,
                contact_key = CASE WHEN \(contact != nil) THEN \(contact ?? nil) ELSE contact_key END
            WHERE app = \(key.appCode) AND device_id = \(key.deviceId)
            """)
        try await PostgresRows.recordStateChange(tx, key, from: created ? nil : before, to: state, now: now)  // a new device's first state is no change
    }

    /// `before`: the state column before this write, for the device's history.
    private func refreshStateColumn(_ key: DeviceKey, before: String?) async throws {
        guard let row = try await PostgresRows.device(tx, key, sealer) else { return }
        let name = DeviceStateName.of(row.state, pending: row.pending)
        try await tx.exec(PGStatement.StateColumn.self, "UPDATE devices SET state = \(name.rawValue) WHERE app = \(key.appCode) AND device_id = \(key.deviceId)")
        try await PostgresRows.recordStateChange(tx, key, from: before, to: name.rawValue, now: now)
    }
}
