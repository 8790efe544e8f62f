import Foundation
import GRDB
import PostgresNIO
import Workflow

/// What the retention sweep did in one batch of one app.
public struct RetentionBatch: Sendable, Hashable {
    /// The devices it queued work for: the removal of their token at ME (`expire`) or their forgetting (`forget`).
    public var devices: [DeviceKey]
    /// How many stale devices it found (some may have been written for before it could lock them): as many as asked
    /// for means more may wait.
    public var examined: Int
    /// Another instance is sweeping the app (PostgreSQL): this one did nothing.
    public var busy: Bool

    public init(devices: [DeviceKey], examined: Int? = nil, busy: Bool = false) {
        self.devices = devices
        self.examined = examined ?? devices.count
        self.busy = busy
    }
}

/// `devices.expiry`: what the retention sweep queued for a device since a backend last wrote for it. A backend's
/// write (or a deduplicated one, `markSeen`) sets it back to `none`; the sweep picks each device once per step.
enum RetentionMark {
    static let none = 0
    /// Its token's removal at ME is queued (or it held none): `unregisterAfter` passed.
    static let expired = 1
    /// Its forgetting is queued: `forgetAfter` passed.
    static let forgotten = 2
}

extension SQLiteDeviceStore {
    public func markSeen(_ seen: [DeviceKey: Date]) async throws {
        guard !seen.isEmpty else { return }
        try await writes.write { db in
            let update = try db.cachedStatement(sql: """
                UPDATE devices SET last_seen_at = MAX(last_seen_at, ?), expiry = 0 WHERE app = ? AND device_id = ?
                """)
            for (key, at) in seen {
                try update.execute(arguments: [Codec.ms(at), key.appCode, key.deviceId])
            }
        }
    }

    public func expireDevices(app: String, seenBefore: Date, limit: Int, now: Date) async throws -> RetentionBatch {
        let sealer = self.sealer
        return try await writes.write { db in
            let rows = try Row.fetchAll(
                db.cachedStatement(sql: """
                    SELECT device_id, token_hash FROM devices WHERE app = ? AND expiry = 0 AND last_seen_at < ? ORDER BY last_seen_at LIMIT ?
                    """),
                arguments: [app, Codec.ms(seenBefore), limit])
            var devices: [DeviceKey] = []
            for row in rows {
                let key = DeviceKey(appCode: app, deviceId: row["device_id"])
                if let hash: String = row["token_hash"], try SQLiteIntake.holder(db, app: app, tokenHash: hash) == key {
                    _ = try SQLiteIntake(db: db, key: key, now: now, sealer: sealer, seen: false).release(hash, cause: .expired)
                }
                try Self.mark(db, key, RetentionMark.expired)
                devices.append(key)
            }
            return RetentionBatch(devices: devices, examined: rows.count)
        }
    }

    public func forgetDevices(
        app: String, seenBefore: Date, policy: AppPolicy, limits: QueueLimits, limit: Int, now: Date
    ) async throws -> RetentionBatch {
        let sealer = self.sealer
        return try await writes.write { db in
            let ids = try String.fetchAll(
                db.cachedStatement(sql: """
                    SELECT device_id FROM devices WHERE app = ? AND expiry IN (0, 1) AND last_seen_at < ? LIMIT ?
                    """),
                arguments: [app, Codec.ms(seenBefore), limit])
            var devices: [DeviceKey] = []
            for id in ids {
                let key = DeviceKey(appCode: app, deviceId: id)
                let intake = SQLiteIntake(db: db, key: key, now: now, sealer: sealer, seen: false)
                guard case .accepted = try intake.accept(.forget, policy: policy, limits: limits, newClientId: "") else { break }
                try Self.mark(db, key, RetentionMark.forgotten)
                devices.append(key)
            }
            return RetentionBatch(devices: devices)
        }
    }

    private static func mark(_ db: Database, _ key: DeviceKey, _ mark: Int) throws {
        try db.cachedStatement(sql: "UPDATE devices SET expiry = ? WHERE app = ? AND device_id = ?")
            .execute(arguments: [mark, key.appCode, key.deviceId])
    }
}

extension PostgresDeviceStore {
    public func markSeen(_ seen: [DeviceKey: Date]) async throws {
        guard !seen.isEmpty else { return }
        try await ready.value()
        // Rows in key order (byte order, as Swift sorts the ids elsewhere), as every transaction that locks several
        // devices takes them.
        let marks = seen.sorted { ($0.key.appCode, $0.key.deviceId) < ($1.key.appCode, $1.key.deviceId) }
        let apps = marks.map(\.key.appCode)
        let devices = marks.map(\.key.deviceId)
        let ats = marks.map { Codec.ms($0.value) }
        try await transaction(synchronous: false) { tx in
            try await tx.exec(PGStatement.MarkSeen.self, """
                UPDATE devices d SET last_seen_at = GREATEST(d.last_seen_at, u.at), expiry = 0
                FROM (
                    SELECT s.app, s.device_id, s.at FROM unnest(\(apps)::text[], \(devices)::text[], \(ats)::bigint[]) AS s(app, device_id, at)
                    JOIN devices l ON l.app = s.app AND l.device_id = s.device_id
                    ORDER BY l.app COLLATE "C", l.device_id COLLATE "C" FOR NO KEY UPDATE OF l
                ) u
                WHERE d.app = u.app AND d.device_id = u.device_id
                """)
        }
    }

    /// Takes the app's sweep for this transaction; false when another instance has it. Advisory locks are per database:
    /// the key names the schema too, so deployments in other schemas of the database do not hold each other up.
    private static func takeSweep(_ tx: PGTx, app: String) async throws -> Bool {
        try await tx.rows(PGStatement.TakeSweep.self, """
            SELECT pg_try_advisory_xact_lock(hashtextextended('retention:' || current_schema() || ':' || \(app), 0))
            """).first?.decode(Bool.self) ?? false
    }

    /// Takes the locks of `accept` for `keys` and their token hashes in its order, all the claims first (by hash), then
    /// the devices and their rows (by id), so that a batch never waits on a write that waits on it.
    private static func lockForSweep(_ tx: PGTx, app: String, keys: [DeviceKey], hashes: [String]) async throws {
        for hash in Set(hashes).sorted() {
            try await tx.exec(PGStatement.LockKey.self, "SELECT pg_advisory_xact_lock(hashtextextended(\("claim:\(app):\(hash)"), 0))")
        }
        let sorted = keys.sorted { $0.deviceId < $1.deviceId }
        for k in sorted {
            try await tx.exec(PGStatement.LockKey.self, "SELECT pg_advisory_xact_lock(hashtextextended(\("device:\(k.appCode):\(k.deviceId)"), 0))")
        }
        for k in sorted {
            try await tx.exec(PGStatement.LockDeviceRow.self, "SELECT 1 FROM devices WHERE app = \(k.appCode) AND device_id = \(k.deviceId) FOR UPDATE")
        }
    }

    /// The device's token hash if it still matches the sweep's condition under its locks (nil inside: it holds none);
    /// nil when it no longer does (a backend wrote for it meanwhile, or it is gone).
    private static func stillStale(_ tx: PGTx, _ key: DeviceKey, seenBefore: Int64, below mark: Int) async throws -> String?? {
        guard let row = try await tx.rows(PGStatement.StillStale.self, """
            SELECT token_hash FROM devices WHERE app = \(key.appCode) AND device_id = \(key.deviceId) AND expiry < \(mark) AND last_seen_at < \(seenBefore)
            """).first else { return nil }
        return .some(try row.decode(String?.self))
    }

    public func expireDevices(app: String, seenBefore: Date, limit: Int, now: Date) async throws -> RetentionBatch {
        try await ready.value()
        let cutoff = Codec.ms(seenBefore)
        return try await transaction { tx in
            guard try await Self.takeSweep(tx, app: app) else { return RetentionBatch(devices: [], busy: true) }
            let rows = try await tx.rows(PGStatement.StaleDevices.self, """
                SELECT device_id, token_hash FROM devices WHERE app = \(app) AND expiry = 0 AND last_seen_at < \(cutoff)
                ORDER BY last_seen_at LIMIT \(Int64(limit))
                """)
            let found = try rows.map { try $0.decode((String, String?).self) }
            let keys = found.map { DeviceKey(appCode: app, deviceId: $0.0) }
            try await Self.lockForSweep(tx, app: app, keys: keys, hashes: found.compactMap(\.1))
            var devices: [DeviceKey] = []
            for (key, (_, hashThen)) in zip(keys, found) {
                // Read again under the locks; a hash that changed meanwhile had no claim lock taken, so it waits.
                guard let hash = try await Self.stillStale(tx, key, seenBefore: cutoff, below: RetentionMark.expired), hash == hashThen else { continue }
                if let hash, try await PostgresIntake.holder(tx, app: app, tokenHash: hash) == key {
                    _ = try await PostgresIntake.release(tx, app: app, tokenHash: hash, cause: .expired, now: now, sealer: self.sealer)
                }
                try await Self.mark(tx, key, RetentionMark.expired)
                devices.append(key)
            }
            return RetentionBatch(devices: devices, examined: found.count)
        }
    }

    public func forgetDevices(
        app: String, seenBefore: Date, policy: AppPolicy, limits: QueueLimits, limit: Int, now: Date
    ) async throws -> RetentionBatch {
        try await ready.value()
        let cutoff = Codec.ms(seenBefore)
        return try await transaction { tx in
            guard try await Self.takeSweep(tx, app: app) else { return RetentionBatch(devices: [], busy: true) }
            let rows = try await tx.rows(PGStatement.ForgettableDevices.self, """
                SELECT device_id FROM devices WHERE app = \(app) AND expiry IN (0, 1) AND last_seen_at < \(cutoff) LIMIT \(Int64(limit))
                """)
            let keys = try rows.map { DeviceKey(appCode: app, deviceId: try $0.decode(String.self)) }
            // A forget names no token: `accept` takes only the device's locks, here taken first in id order.
            try await Self.lockForSweep(tx, app: app, keys: keys, hashes: [])
            var devices: [DeviceKey] = []
            for key in keys.sorted(by: { $0.deviceId < $1.deviceId }) {
                guard try await Self.stillStale(tx, key, seenBefore: cutoff, below: RetentionMark.forgotten) != nil else { continue }
                let intake = PostgresIntake(tx: tx, key: key, now: now, sealer: self.sealer, seen: false)
                // At the queue bound the batch ends short, and the round with it.
                guard case .accepted = try await intake.accept(.forget, policy: policy, limits: limits, newClientId: "") else {
                    return RetentionBatch(devices: devices)
                }
                try await Self.mark(tx, key, RetentionMark.forgotten)
                devices.append(key)
            }
            return RetentionBatch(devices: devices, examined: keys.count)
        }
    }

    private static func mark(_ tx: PGTx, _ key: DeviceKey, _ mark: Int) async throws {
        try await tx.exec(PGStatement.RetentionMark.self, """
            UPDATE devices SET expiry = \(mark) WHERE app = \(key.appCode) AND device_id = \(key.deviceId)
            """)
    }
}
