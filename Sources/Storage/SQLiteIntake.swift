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

    func accept(_ write: DeviceWrite, policy: AppPolicy, limits: QueueLimits, newClientId: String) throws -> AcceptResult {
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

        switch Intake.decide(write, view: view, policy: policy) {
        case .unknownDevice:
            return .unknownDevice
        case .deduplicated:
            guard let device else { return .unknownDevice }
            return .deduplicated(try device.status(deduplicated: true))
        case .enqueue(let payload, let collapse, let takeFrom):
            // The queue bound counts what this write adds: the intent, a release at the old holder,
            // less the token intents it collapses.
            let collapsible = collapse ? queued.filter { Self.isTokenIntent($0.intent.payload) }.count : 0
            let added = 1 + (takeFrom == nil ? 0 : 1) - collapsible
            if added > 0 {
                let counts = try SQLiteRows.queuedCounts(db, app: key.appCode)
                if counts.total + added > limits.maxQueuedIntents { return .queueFull(scope: "global") }
                if counts.app + added > limits.maxQueuedIntentsPerApp { return .queueFull(scope: "app") }
            }
            if device == nil { try create(write: write, clientId: newClientId) }
            if collapse {
                try SQLiteRows.deleteIntents(db, key, where: "kind IN ('set-token', 'remove-token')")
            }
            if let takeFrom, let token { try moveToken(token, from: takeFrom) }
            try SQLiteRows.insertIntent(db, key, payload, tokenHash: token?.tokenHash, waitsFor: takeFrom?.deviceId, now: now, sealer: sealer)
            try updateClaims(for: write, token: token)
            try touch(write: write, token: token)
            guard let stored = try SQLiteRows.device(db, key, sealer) else { throw StorageError.corrupt("device vanished inside its transaction") }
            return .accepted(try stored.status(deduplicated: false))
        }
    }

    static func token(of write: DeviceWrite) -> TokenRef? {
        switch write {
        case .setToken(let t): t
        case .start(let s): s.token
        default: nil
        }
    }

    static func isTokenIntent(_ payload: IntentPayload) -> Bool {
        switch payload {
        case .setToken, .removeToken: true
        default: false
        }
    }

    private func create(write: DeviceWrite, clientId: String) throws {
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
    }

    /// The token leaves `holder`: its queued intents for that token go, and a release is queued
    /// ahead of everything else there, which this device's push-token step waits for.
    private func moveToken(_ token: TokenRef, from holder: DeviceKey) throws {
        try SQLiteRows.deleteIntents(db, holder, where: "kind = 'set-token' AND token_hash = ?", [token.tokenHash])
        try SQLiteRows.insertIntent(db, holder, .release(tokenHash: token.tokenHash), tokenHash: token.tokenHash, waitsFor: nil, now: now, sealer: sealer)
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

    private func updateClaims(for write: DeviceWrite, token: TokenRef?) throws {
        switch write {
        case .setToken, .start:
            guard let token else { return }
            try db.execute(sql: "DELETE FROM token_claims WHERE app = ? AND device_id = ?", arguments: [key.appCode, key.deviceId])
            try db.execute(
                sql: "INSERT OR REPLACE INTO token_claims(app, token_hash, device_id) VALUES (?, ?, ?)",
                arguments: [key.appCode, token.tokenHash, key.deviceId])
        case .removeToken, .forget:
            try db.execute(sql: "DELETE FROM token_claims WHERE app = ? AND device_id = ?", arguments: [key.appCode, key.deviceId])
        default:
            break
        }
    }

    /// Registration columns follow the newest request; the device becomes due (a failed one too:
    /// a new intent retries its failed step), but a backoff in progress is kept.
    private func touch(write: DeviceWrite, token: TokenRef?) throws {
        var sets = ["pending = ?", "due_at = COALESCE(due_at, ?)", "updated_at = ?"]
        var args: [DatabaseValueConvertible?] = [try SQLiteRows.pendingCount(db, key), Codec.ms(now), Codec.ms(now)]
        if let token {
            sets += ["token_hash = ?", "provider = ?", "platform = ?"]
            args += [token.tokenHash, token.provider, token.platform]
        } else if case .start(let s) = write {
            sets += ["provider = ?", "platform = ?"]
            args += [s.provider, s.platform]
        }
        switch write {
        case .removeToken, .forget:
            sets.append("token_hash = NULL")
        default:
            break
        }
        try db.execute(
            sql: "UPDATE devices SET \(sets.joined(separator: ", ")) WHERE app = ? AND device_id = ?",
            arguments: StatementArguments(args + [key.appCode, key.deviceId]))
        try refreshStateColumn(key)
    }

    private func refreshStateColumn(_ key: DeviceKey) throws {
        guard let row = try SQLiteRows.device(db, key, sealer) else { return }
        let name = DeviceStateName.of(row.state, pending: row.pending)
        try db.execute(
            sql: "UPDATE devices SET state = ? WHERE app = ? AND device_id = ?",
            arguments: [name.rawValue, key.appCode, key.deviceId])
    }
}
