import Foundation
import GRDB
import PostgresNIO
import Workflow

// Re-drive (`POST /v1/apps/{code}/devices/retry`): failed devices become due, and the engine starts their failed step
// again with a fresh budget (`Planner`: a failed device that is worked again starts over), as a new intent would.

extension SQLiteDeviceStore {
    public func retryFailed(app: String, step: String?, now: Date) async throws -> Int {
        let sealer = self.sealer
        return try await writes.write { db in
            let rows = try Row.fetchAll(
                db.cachedStatement(sql: "SELECT device_id, data FROM devices WHERE app = ? AND state = 'failed' AND pending > 0"),
                arguments: [app])
            let update = try db.cachedStatement(sql: "UPDATE devices SET due_at = ? WHERE app = ? AND device_id = ?")
            var woken = 0
            for row in rows {
                if let step, try Codec.open(DeviceState.self, row["data"] as Data, sealer).lastError?.step != step { continue }
                try update.execute(arguments: [Codec.ms(now), app, row["device_id"] as String])
                woken += 1
            }
            return woken
        }
    }
}

extension PostgresDeviceStore {
    public func retryFailed(app: String, step: String?, now: Date) async throws -> Int {
        try await ready.value()
        let nowMs = Codec.ms(now)
        return try await transaction { tx in
            let rows = try await tx.rows(PGStatement.FailedDevices.self, """
                SELECT device_id, data FROM devices WHERE app = \(app) AND state = 'failed' AND pending > 0
                """)
            var ids: [String] = []
            for row in rows {
                let (id, data) = try row.decode((String, Data).self)
                if let step, try Codec.open(DeviceState.self, data, self.sealer).lastError?.step != step { continue }
                ids.append(id)
            }
            guard !ids.isEmpty else { return 0 }
            // Rows locked in byte order of their ids, as every transaction that locks several devices takes them.
            try await tx.exec(PGStatement.LockFailed.self, """
                SELECT 1 FROM devices WHERE app = \(app) AND device_id = ANY(\(ids)::text[]) ORDER BY device_id COLLATE "C" FOR UPDATE
                """)
            // Only those still failed: one may have been worked (or forgotten) since the read.
            let woken = try await tx.count(PGStatement.WakeFailed.self, """
                UPDATE devices SET due_at = \(nowMs) WHERE app = \(app) AND device_id = ANY(\(ids)::text[]) AND state = 'failed' RETURNING 1
                """)
            try await tx.exec(PGStatement.Notify.self, "SELECT pg_notify(\(PostgresDeviceStore.workChannel), '')")
            return woken
        }
    }
}
