import Foundation
import GRDB
import Workflow

/// Reading device and intent rows.
enum SQLiteRows {
    static let deviceColumns = "app, device_id, client_id, provider, platform, token_hash, state, pending, due_at, updated_at, data, last_seen_at"

    typealias DeviceRow = StoredDevice

    struct QueuedRow {
        var intent: Intent
        var tokenHash: String?
    }

    static func device(_ db: Database, _ key: DeviceKey, _ sealer: Sealer) throws -> DeviceRow? {
        try Row.fetchOne(
            db.cachedStatement(sql: "SELECT \(deviceColumns) FROM devices WHERE app = ? AND device_id = ?"),
            arguments: [key.appCode, key.deviceId]
        ).map { try DeviceRow(row: $0, sealer: sealer) }
    }

    /// The device's queue in processing order: releases first, then acceptance order.
    static func queued(_ db: Database, _ key: DeviceKey, _ sealer: Sealer, limit: Int = 10_000) throws -> [QueuedRow] {
        try Row.fetchAll(
            db.cachedStatement(sql: """
                SELECT id, token_hash, progress, accepted_at, payload FROM intents
                WHERE app = ? AND device_id = ? ORDER BY priority, id LIMIT ?
                """),
            arguments: [key.appCode, key.deviceId, limit]
        ).map { row in
            let payload: Data = row["payload"]
            let intent = Intent(
                id: row["id"], payload: try Codec.open(IntentPayload.self, payload, sealer),
                acceptedAt: Codec.date(row["accepted_at"]), progress: row["progress"])
            return QueuedRow(intent: intent, tokenHash: row["token_hash"])
        }
    }

    static func adjustQueued(_ db: Database, app: String, by delta: Int) throws {
        guard delta != 0 else { return }
        try db.cachedStatement(sql: """
            INSERT INTO queue_counts(app, queued) VALUES (?, ?)
            ON CONFLICT(app) DO UPDATE SET queued = queued + excluded.queued
            """).execute(arguments: [app, delta])
    }

    static func pendingCount(_ db: Database, _ key: DeviceKey) throws -> Int {
        try Int.fetchOne(
            db.cachedStatement(sql: "SELECT COUNT(*) FROM intents WHERE app = ? AND device_id = ?"),
            arguments: [key.appCode, key.deviceId]) ?? 0
    }

    /// Deletes intents matching `condition` of one device; returns how many.
    @discardableResult
    static func deleteIntents(_ db: Database, _ key: DeviceKey, where condition: String, _ extra: [DatabaseValueConvertible] = []) throws -> Int {
        try db.cachedStatement(sql: "DELETE FROM intents WHERE app = ? AND device_id = ? AND \(condition)")
            .execute(arguments: StatementArguments([key.appCode, key.deviceId] + extra))
        let n = db.changesCount
        try adjustQueued(db, app: key.appCode, by: -n)
        return n
    }

    static func insertIntent(_ db: Database, _ key: DeviceKey, _ payload: IntentPayload, tokenHash: String?, waitsFor: String?, now: Date, sealer: Sealer) throws {
        try db.cachedStatement(sql: """
            INSERT INTO intents(app, device_id, priority, kind, token_hash, waits_for, progress, accepted_at, payload)
            VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?)
            """).execute(arguments: [
                key.appCode, key.deviceId, payload.priority, payload.kind, tokenHash, waitsFor, Codec.ms(now), try Codec.seal(payload, sealer),
            ])
        try adjustQueued(db, app: key.appCode, by: 1)
    }

    /// Applies `Intake`'s decision about a device's queued intents.
    static func apply(_ edits: QueueEdits, _ db: Database, _ key: DeviceKey, now: Date, sealer: Sealer) throws {
        for id in edits.dropIds { try deleteIntents(db, key, where: "id = ?", [id]) }
        for rewrite in edits.rewrites {
            try db.cachedStatement(sql: "UPDATE intents SET payload = ?, token_hash = NULL, waits_for = NULL WHERE id = ?")
                .execute(arguments: [try Codec.seal(rewrite.payload, sealer), rewrite.id])
        }
    }

    static func queuedCounts(_ db: Database, app: String) throws -> (total: Int, app: Int) {
        var total = 0
        var forApp = 0
        for row in try Row.fetchAll(db.cachedStatement(sql: "SELECT app, queued FROM queue_counts")) {
            let n: Int = row["queued"]
            total += n
            if (row["app"] as String) == app { forApp = n }
        }
        return (total, forApp)
    }
}

extension StoredDevice {
    init(row: Row, sealer: Sealer) throws {
        self.init(
            key: DeviceKey(appCode: row["app"], deviceId: row["device_id"]), provider: row["provider"], platform: row["platform"],
            tokenHash: row["token_hash"], pending: row["pending"], dueAt: row["due_at"], updatedAt: row["updated_at"],
            state: try Codec.open(DeviceState.self, row["data"] as Data, sealer), lastSeenAt: row["last_seen_at"])
    }
}
