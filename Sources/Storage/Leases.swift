import Foundation
import GRDB
import PostgresNIO
import Workflow

// Leases kept alive and taken back (`emarsys.leaseSeconds`, `instance.id`): a worker's devices are renewed while it
// works on them (the engine's heartbeat), so a lease can be short and a killed instance's devices go to another one
// soon; an instance that restarts gives back at once the leases its earlier run held.

extension Duration {
    /// In whole milliseconds.
    var wholeMilliseconds: Int64 { components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000 }
}

extension SQLiteDeviceStore {
    public func renewLeases(_ keys: [DeviceKey], owner: String, lease: Duration, now: Date) async throws -> Set<DeviceKey> {
        let until = Codec.ms(now) + lease.wholeMilliseconds
        return try await writes.write { db in
            let statement = try db.cachedStatement(sql: "UPDATE devices SET lease_until = ? WHERE app = ? AND device_id = ? AND lease_owner = ?")
            var kept: Set<DeviceKey> = []
            for key in keys {
                try statement.execute(arguments: [until, key.appCode, key.deviceId, owner])
                if db.changesCount > 0 { kept.insert(key) }
            }
            return kept
        }
    }

    public func releaseLeases(ofInstance instance: String, except owner: String) async throws -> Int {
        let prefix = instance + "/"
        return try await writes.write { db in
            try db.execute(
                sql: "UPDATE devices SET lease_owner = NULL, lease_until = NULL WHERE substr(lease_owner, 1, ?) = ? AND lease_owner <> ?",
                arguments: [prefix.utf8.count, prefix, owner])
            return db.changesCount
        }
    }
}

extension PostgresDeviceStore {
    public func renewLeases(_ keys: [DeviceKey], owner: String, lease: Duration, now: Date) async throws -> Set<DeviceKey> {
        guard !keys.isEmpty else { return [] }
        try await ready.value()
        let until = Codec.ms(now) + lease.wholeMilliseconds
        let (apps, ids) = (keys.map(\.appCode), keys.map(\.deviceId))
        return try await transaction(synchronous: false) { tx in
            // Rows in byte order of their ids, as every transaction that locks several devices takes them.
            try await tx.rows(PGStatement.RenewLeases.self, """
                UPDATE devices d SET lease_until = \(until)
                FROM (SELECT * FROM unnest(\(apps)::text[], \(ids)::text[]) AS v(app, id) ORDER BY v.id COLLATE "C") AS v
                WHERE d.app = v.app AND d.device_id = v.id AND d.lease_owner = \(owner)
                RETURNING d.app, d.device_id
                """).reduce(into: Set<DeviceKey>()) { kept, row in
                let (app, id) = try row.decode((String, String).self)
                kept.insert(DeviceKey(appCode: app, deviceId: id))
            }
        }
    }

    public func releaseLeases(ofInstance instance: String, except owner: String) async throws -> Int {
        try await ready.value()
        let prefix = instance + "/"
        return try await transaction(synchronous: false) { tx in
            try await tx.count("""
                UPDATE devices SET lease_owner = NULL, lease_until = NULL
                WHERE left(lease_owner, \(prefix.count)::int) = \(prefix) AND lease_owner <> \(owner) RETURNING 1
                """)
        }
    }
}
