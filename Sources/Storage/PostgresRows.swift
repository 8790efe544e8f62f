import Foundation
import PostgresNIO
import Workflow

/// Reading and writing device and intent rows in PostgreSQL (the counterpart of `SQLiteRows`).
enum PostgresRows {
    static let deviceColumns = "app, device_id, client_id, provider, platform, token_hash, state, pending, due_at, updated_at, data, last_seen_at"

    typealias DeviceRow = StoredDevice

    struct QueuedRow {
        var intent: Intent
        var tokenHash: String?
    }

    static func device(_ tx: PGTx, _ key: DeviceKey, _ sealer: Sealer, forUpdate: Bool = false) async throws -> DeviceRow? {
        let rows = forUpdate
            ? try await tx.rows(PGStatement.DeviceForUpdate.self, """
                SELECT \(unescaped: deviceColumns) FROM devices WHERE app = \(key.appCode) AND device_id = \(key.deviceId) FOR UPDATE
                """)
            : try await tx.rows(PGStatement.Device.self, """
                SELECT \(unescaped: deviceColumns) FROM devices WHERE app = \(key.appCode) AND device_id = \(key.deviceId)
                """)
        return try rows.first.map { try DeviceRow(row: $0, sealer: sealer) }
    }

    /// The device's queue in processing order: releases first, then acceptance order.
    static func queued(_ tx: PGTx, _ key: DeviceKey, _ sealer: Sealer, limit: Int = 10_000) async throws -> [QueuedRow] {
        try await tx.rows(PGStatement.Queued.self, """
            SELECT id, token_hash, progress, accepted_at, payload FROM intents
            WHERE app = \(key.appCode) AND device_id = \(key.deviceId) ORDER BY priority, id LIMIT \(limit)
            """).map { row in
            let (id, tokenHash, progress, acceptedAt, payload) = try row.decode((Int64, String?, Int64, Int64, Data).self)
            let intent = Intent(
                id: id, payload: try Codec.open(IntentPayload.self, payload, sealer), acceptedAt: Codec.date(acceptedAt), progress: Int(progress))
            return QueuedRow(intent: intent, tokenHash: tokenHash)
        }
    }

    static func adjustQueued(_ tx: PGTx, app: String, by delta: Int) async throws {
        guard delta != 0 else { return }
        let shard = Int.random(in: 0..<8)
        try await tx.exec(PGStatement.AdjustQueued.self, """
            INSERT INTO queue_counts(app, shard, queued) VALUES (\(app), \(shard), \(delta))
            ON CONFLICT (app, shard) DO UPDATE SET queued = queue_counts.queued + EXCLUDED.queued
            """)
    }

    static func pendingCount(_ tx: PGTx, _ key: DeviceKey) async throws -> Int {
        let n = try await tx.rows(PGStatement.PendingCount.self, "SELECT COUNT(*) FROM intents WHERE app = \(key.appCode) AND device_id = \(key.deviceId)")
            .first.map { try $0.decode(Int64.self) } ?? 0
        return Int(n)
    }

    enum IntentFilter {
        case all
        case id(Int64)
        case upTo(Int64)
        /// What a forget covered: up to its own intent, and every release (the forget removed the token at ME).
        case forgotten(upTo: Int64)
    }

    /// Applies `Intake`'s decision about a device's queued intents.
    static func apply(_ edits: QueueEdits, _ tx: PGTx, _ key: DeviceKey, now: Date, sealer: Sealer) async throws {
        for id in edits.dropIds { try await deleteIntents(tx, key, .id(id)) }
        for rewrite in edits.rewrites {
            let sealed = try Codec.seal(rewrite.payload, sealer)
            try await tx.exec(PGStatement.RewriteIntent.self, "UPDATE intents SET payload = \(sealed), token_hash = NULL, waits_for = NULL WHERE id = \(rewrite.id)")
        }
    }

    /// Deletes intents of one device; returns how many.
    @discardableResult
    static func deleteIntents(_ tx: PGTx, _ key: DeviceKey, _ filter: IntentFilter) async throws -> Int {
        let (app, device) = (key.appCode, key.deviceId)
        let n: Int
        switch filter {
        case .all:
            n = try await tx.count(PGStatement.DeleteAllIntents.self, "DELETE FROM intents WHERE app = \(app) AND device_id = \(device) RETURNING 1")
        case .id(let id):
            n = try await tx.count(PGStatement.DeleteIntent.self, "DELETE FROM intents WHERE app = \(app) AND device_id = \(device) AND id = \(id) RETURNING 1")
        case .upTo(let id):
            n = try await tx.count(PGStatement.DeleteIntentsUpTo.self, "DELETE FROM intents WHERE app = \(app) AND device_id = \(device) AND id <= \(id) RETURNING 1")
        case .forgotten(let id):
            n = try await tx.count(PGStatement.DeleteForgottenIntents.self, """
                DELETE FROM intents WHERE app = \(app) AND device_id = \(device) AND (id <= \(id) OR kind = 'release') RETURNING 1
                """)
        }
        try await adjustQueued(tx, app: app, by: -n)
        return n
    }

    static func insertIntent(
        _ tx: PGTx, _ key: DeviceKey, _ payload: IntentPayload, tokenHash: String?, waitsFor: String?, now: Date, sealer: Sealer
    ) async throws {
        let sealed = try Codec.seal(payload, sealer)
        try await tx.exec(PGStatement.InsertIntent.self, """
            INSERT INTO intents(app, device_id, priority, kind, token_hash, waits_for, progress, accepted_at, payload)
            VALUES (\(key.appCode), \(key.deviceId), \(payload.priority), \(payload.kind), \(tokenHash), \(waitsFor), 0, \(Codec.ms(now)), \(sealed))
            """)
        try await adjustQueued(tx, app: key.appCode, by: 1)
    }

    static func queuedCounts(_ tx: PGTx, app: String) async throws -> (total: Int, app: Int) {
        var total = 0
        var forApp = 0
        for row in try await tx.rows(PGStatement.QueuedCounts.self, "SELECT app, SUM(queued)::BIGINT FROM queue_counts GROUP BY app") {
            let (a, n) = try row.decode((String, Int64).self)
            total += Int(n)
            if a == app { forApp = Int(n) }
        }
        return (total, forApp)
    }
}

extension StoredDevice {
    init(row: PostgresRow, sealer: Sealer) throws {
        let (app, deviceId, _, provider, platform, tokenHash, _, pending, dueAt, updatedAt, data, lastSeenAt) =
            try row.decode((String, String, String, String?, String, String?, String, Int64, Int64?, Int64, Data, Int64).self)
        self.init(
            key: DeviceKey(appCode: app, deviceId: deviceId), provider: provider, platform: platform, tokenHash: tokenHash,
            pending: Int(pending), dueAt: dueAt, updatedAt: updatedAt, state: try Codec.open(DeviceState.self, data, sealer),
            lastSeenAt: lastSeenAt)
    }
}
