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

    /// What the rules need, read from the store.
    private struct Reads {
        var device: SQLiteRows.DeviceRow?
        var queued: [SQLiteRows.QueuedRow]
        var token: TokenRef?
        var decision: IntakeDecision
    }

    private func read(_ write: DeviceWrite, policy: AppPolicy) throws -> Reads {
        let device = try SQLiteRows.device(db, key, sealer)
        let queued = try device == nil ? [] : SQLiteRows.queued(db, key, sealer)
        let token = Self.token(of: write)
        var holder: DeviceKey?
        if let token {
            let holderId = try String.fetchOne(
                db.cachedStatement(sql: "SELECT device_id FROM token_claims WHERE app = ? AND token_hash = ?"),
                arguments: [key.appCode, token.tokenHash])
            if let holderId, holderId != key.deviceId { holder = DeviceKey(appCode: key.appCode, deviceId: holderId) }
        }
        let view = IntakeView(exists: device != nil, state: device?.state, queued: queued.map(\.intent), tokenHolder: holder)
        return Reads(device: device, queued: queued, token: token, decision: Intake.decide(write, view: view, policy: policy))
    }

    /// The answer to a write that changes nothing (deduplicated, unknown device), or nil when it must be
    /// stored. Safe on a read snapshot: what it answers is what `accept` would answer at that moment.
    func unchangedOutcome(_ write: DeviceWrite, policy: AppPolicy) throws -> AcceptResult? {
        let reads = try read(write, policy: policy)
        switch reads.decision {
        case .unknownDevice:
            return .unknownDevice
        case .deduplicated:
            guard let device = reads.device else { return .unknownDevice }
            return .deduplicated(try device.status(deduplicated: true))
        case .enqueue:
            return nil
        }
    }

    func accept(_ write: DeviceWrite, policy: AppPolicy, limits: QueueLimits, newClientId: String) throws -> AcceptResult {
        let reads = try read(write, policy: policy)
        let device = reads.device
        let queued = reads.queued
        let token = reads.token

        switch reads.decision {
        case .unknownDevice:
            return .unknownDevice
        case .deduplicated:
            guard let device else { return .unknownDevice }
            return .deduplicated(try device.status(deduplicated: true))
        case .enqueue(let payload, let collapse, let takeFrom):
            // The queue bound counts what this write adds: the intent, a release at the old holder,
            // less the token intents it collapses.
            let collapsed = collapse ? Intake.collapse(queued: queued.map(\.intent)) : QueueEdits()
            let added = 1 + (takeFrom == nil ? 0 : 1) - collapsed.dropIds.count
            if added > 0 {
                let counts = try SQLiteRows.queuedCounts(db, app: key.appCode)
                if counts.total + added > limits.maxQueuedIntents { return .queueFull(scope: "global") }
                if counts.app + added > limits.maxQueuedIntentsPerApp { return .queueFull(scope: "app") }
            }
            var row: SQLiteRows.DeviceRow
            if let device {
                row = device
            } else {
                row = try create(write: write, clientId: newClientId)
            }
            try SQLiteRows.apply(collapsed, db, key, now: now, sealer: sealer)
            if let takeFrom, let token { try moveToken(token, from: takeFrom) }
            try SQLiteRows.insertIntent(db, key, payload, tokenHash: token?.tokenHash, waitsFor: takeFrom?.deviceId, now: now, sealer: sealer)
            try updateClaims(for: write, token: token, state: device?.state)
            // The row as the transaction leaves it: this write touches only registration columns, so the
            // engine's state is the one just read (or created).
            try touch(write: write, token: token, row: &row)
            return .accepted(try row.status(deduplicated: false))
        }
    }

    static func token(of write: DeviceWrite) -> TokenRef? {
        switch write {
        case .setToken(let t): t
        case .start(let s): s.token
        default: nil
        }
    }

    private func create(write: DeviceWrite, clientId: String) throws -> SQLiteRows.DeviceRow {
        let platform: String
        let provider: String?
        switch write {
        case .start(let s):
            platform = s.token?.platform ?? s.platform
            provider = s.token?.provider ?? s.provider
        case .setToken(let t):
            platform = t.platform
            provider = t.provider
        default:
            throw StorageError.corrupt("only a start or a token creates a device")
        }
        var startClientId = clientId
        if case .start(let s) = write, let given = s.clientId { startClientId = given }
        let state = DeviceState(clientId: startClientId, platform: platform)
        try db.cachedStatement(sql: """
            INSERT INTO devices(app, device_id, client_id, provider, platform, token_hash, state, pending, due_at, created_at, updated_at, data)
            VALUES (?, ?, ?, ?, ?, NULL, 'pending', 0, NULL, ?, ?, ?)
            """).execute(arguments: [
                key.appCode, key.deviceId, startClientId, provider, platform, Codec.ms(now), Codec.ms(now), try Codec.seal(state, sealer),
            ])
        return SQLiteRows.DeviceRow(
            key: key, provider: provider, platform: platform, tokenHash: nil, pending: 0, dueAt: nil, updatedAt: Codec.ms(now), state: state)
    }

    /// The token leaves `holder`: its queued intents for that token go, and a release is queued
    /// ahead of everything else there, which this device's push-token step waits for.
    private func moveToken(_ token: TokenRef, from holder: DeviceKey) throws {
        let held = try SQLiteRows.device(db, holder, sealer)
        let move = Intake.release(
            tokenHash: token.tokenHash, state: held?.state, queued: try SQLiteRows.queued(db, holder, sealer).map(\.intent))
        try SQLiteRows.apply(move.edits, db, holder, now: now, sealer: sealer)
        try SQLiteRows.insertIntent(db, holder, move.release, tokenHash: token.tokenHash, waitsFor: nil, now: now, sealer: sealer)
        try db.execute(
            sql: "DELETE FROM token_claims WHERE app = ? AND token_hash = ? AND device_id = ?",
            arguments: [holder.appCode, token.tokenHash, holder.deviceId])
        try db.execute(
            sql: """
                UPDATE devices SET
                    token_hash = CASE WHEN token_hash = ? THEN NULL ELSE token_hash END,
                    pending = (SELECT COUNT(*) FROM intents i WHERE i.app = devices.app AND i.device_id = devices.device_id),
                    due_at = COALESCE(due_at, ?), updated_at = ?
                WHERE app = ? AND device_id = ?
                """,
            arguments: [token.tokenHash, Codec.ms(now), Codec.ms(now), holder.appCode, holder.deviceId])
        try refreshStateColumn(holder)
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
    private func touch(write: DeviceWrite, token: TokenRef?, row: inout SQLiteRows.DeviceRow) throws {
        let pending = try SQLiteRows.pendingCount(db, key)
        let nowMs = Codec.ms(now)
        var sets = ["pending = ?", "due_at = COALESCE(due_at, ?)", "updated_at = ?"]
        var args: [DatabaseValueConvertible?] = [pending, nowMs, nowMs]
        row.pending = pending
        row.dueAt = row.dueAt ?? nowMs
        row.updatedAt = nowMs
        if let token {
            sets += ["token_hash = ?", "provider = ?", "platform = ?"]
            args += [token.tokenHash, token.provider, token.platform]
            row.tokenHash = token.tokenHash
            row.provider = token.provider
            row.platform = token.platform
        } else if case .start(let s) = write {
            sets += ["provider = ?", "platform = ?"]
            args += [s.provider, s.platform]
            row.provider = s.provider
            row.platform = s.platform
        }
        switch write {
        case .removeToken, .forget:
            sets.append("token_hash = NULL")
            row.tokenHash = nil
        default:
            break
        }
        sets.append("state = ?")
        args.append(DeviceStateName.of(row.state, pending: pending).rawValue)
        try db.cachedStatement(sql: "UPDATE devices SET \(sets.joined(separator: ", ")) WHERE app = ? AND device_id = ?")
            .execute(arguments: StatementArguments(args + [key.appCode, key.deviceId]))
    }

    private func refreshStateColumn(_ key: DeviceKey) throws {
        guard let row = try SQLiteRows.device(db, key, sealer) else { return }
        let name = DeviceStateName.of(row.state, pending: row.pending)
        try db.execute(
            sql: "UPDATE devices SET state = ? WHERE app = ? AND device_id = ?",
            arguments: [name.rawValue, key.appCode, key.deviceId])
    }
}
