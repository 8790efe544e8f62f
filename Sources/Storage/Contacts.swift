import Foundation
import GRDB
import PostgresNIO
import Workflow

// Contacts: each device keeps a keyed hash of the identified contact its backend asked for last
// (`devices.contact_key`), so `POST .../contacts/...` finds a person's devices without a contact value at rest in
// the clear: the key is an HMAC under a key derived from the storage key (`Sealer.mac`), so a copied database cannot
// be searched with guessed e-mail addresses, and a value that is not a contact of the app finds nothing.

extension Sealer {
    /// The keyed hash of an identified contact: field id and value (the value exactly as the login sent it).
    public func contactKey(fieldId: Int, value: String) -> String {
        mac(Data("\(fieldId):\(value)".utf8), purpose: "contact")
    }
}

enum ContactKey {
    /// The contact key a device has once `payload` is queued: `.some(key)` after an identified login (or a start that
    /// names one), `.some(nil)` after a logout, an OpenID login (ME maps its token to a contact; the bridge never learns
    /// the value) or a forget; nil when the payload asks for no contact (the key stays).
    static func after(_ payload: IntentPayload, sealer: Sealer) -> String?? {
        if case .forget = payload { return .some(nil) }
        switch payload.requestedContact {
        case .identified(let fieldId, let value)?: return .some(sealer.contactKey(fieldId: fieldId, value: value))
        case .anonymous?, .openId?: return .some(nil)
        case nil: return nil
        }
    }

    /// The key of a device from what it wanted before `queued` and the queue (oldest first): for devices stored before
    /// the column existed.
    static func of(_ state: DeviceState, queued: [Intent], sealer: Sealer) -> String? {
        var key: String?
        if case .identified(let fieldId, let value)? = state.wantedContact { key = sealer.contactKey(fieldId: fieldId, value: value) }
        for intent in queued {
            if let next = after(intent.payload, sealer: sealer) { key = next }
        }
        return key
    }

    /// Set on `meta` once every device stored before `contact_key` has its key.
    static let backfilled = "contact-keys"
}

extension SQLiteDeviceStore {
    public func devices(ofContact fieldId: Int, value: String, app: String, limit: Int) async throws -> [DeviceSnapshot] {
        let sealer = self.sealer
        let key = sealer.contactKey(fieldId: fieldId, value: value)
        return try await pool.read { db in
            try Row.fetchAll(
                db.cachedStatement(sql: "SELECT \(SQLiteRows.deviceColumns) FROM devices WHERE app = ? AND contact_key = ? ORDER BY device_id LIMIT ?"),
                arguments: [app, key, limit]
            ).map { try SQLiteRows.DeviceRow(row: $0, sealer: sealer).snapshot }
        }
    }

    public func accept(
        _ write: DeviceWrite, for key: DeviceKey, ifContact fieldId: Int, value: String, policy: AppPolicy, limits: QueueLimits, now: Date
    ) async throws -> AcceptResult {
        let sealer = self.sealer
        let required = sealer.contactKey(fieldId: fieldId, value: value)
        return try await writes.write { db in
            var intake = SQLiteIntake(db: db, key: key, now: now, sealer: sealer)
            intake.requiredContactKey = required
            return try intake.accept(write, policy: policy, limits: limits, newClientId: UUID().uuidString.lowercased())
        }
    }

    /// Gives every device stored before `contact_key` existed its key, once (`meta`).
    func backfillContactKeys(_ db: Database) throws {
        guard try Data.fetchOne(db, sql: "SELECT value FROM meta WHERE name = ?", arguments: [ContactKey.backfilled]) == nil else { return }
        let update = try db.cachedStatement(sql: "UPDATE devices SET contact_key = ? WHERE app = ? AND device_id = ?")
        let rows = try Row.fetchCursor(db, sql: "SELECT app, device_id, data, pending FROM devices")
        var keys: [(DeviceKey, String)] = []
        while let row = try rows.next() {
            let device = DeviceKey(appCode: row["app"], deviceId: row["device_id"])
            let state = try Codec.open(DeviceState.self, row["data"] as Data, sealer)
            let pending: Int = row["pending"]
            let queued = pending > 0 ? try SQLiteRows.queued(db, device, sealer).map(\.intent) : []
            if let key = ContactKey.of(state, queued: queued, sealer: sealer) { keys.append((device, key)) }
        }
        for (device, key) in keys { try update.execute(arguments: [key, device.appCode, device.deviceId]) }
        try db.execute(sql: "INSERT INTO meta(name, value) VALUES (?, ?)", arguments: [ContactKey.backfilled, Data("1".utf8)])
    }
}

extension PostgresDeviceStore {
    public func devices(ofContact fieldId: Int, value: String, app: String, limit: Int) async throws -> [DeviceSnapshot] {
        try await ready.value()
        let key = sealer.contactKey(fieldId: fieldId, value: value)
        return try await withTx { tx in
            try await tx.rows(PGStatement.ContactDevices.self, """
                SELECT \(unescaped: PostgresRows.deviceColumns) FROM devices WHERE app = \(app) AND contact_key = \(key)
                ORDER BY device_id COLLATE "C" LIMIT \(limit)
                """).map { try PostgresRows.DeviceRow(row: $0, sealer: self.sealer).snapshot }
        }
    }

    public func accept(
        _ write: DeviceWrite, for key: DeviceKey, ifContact fieldId: Int, value: String, policy: AppPolicy, limits: QueueLimits, now: Date
    ) async throws -> AcceptResult {
        try await ready.value()
        let required = sealer.contactKey(fieldId: fieldId, value: value)
        return try await transaction { tx in
            var intake = PostgresIntake(tx: tx, key: key, now: now, sealer: self.sealer)
            intake.requiredContactKey = required
            return try await intake.accept(write, policy: policy, limits: limits, newClientId: UUID().uuidString.lowercased())
        }
    }

    /// Gives every device stored before `contact_key` existed its key, once (`meta`): after the migrations committed
    /// (instances of the older version keep working meanwhile), a thousand devices per transaction, each row locked as
    /// `accept` locks it, so a write of another instance in between is never overwritten with an older key. Run again
    /// in full after a crash (the keys it sets are the same).
    func backfillContactKeys() async throws {
        let done = try await withTx { tx in try await !tx.rows("SELECT 1 FROM meta WHERE name = \(ContactKey.backfilled)").isEmpty }
        guard !done else { return }
        var after = ("", "")
        while true {
            let from = after
            guard let last = try await transaction({ tx in try await self.backfillBatch(tx, after: from) }) else { break }
            after = last
        }
        try await transaction { tx in
            try await tx.exec("INSERT INTO meta(name, value) VALUES (\(ContactKey.backfilled), \(Data("1".utf8))) ON CONFLICT (name) DO NOTHING")
        }
    }

    /// One batch of the backfill after `after` (app, device id); the last device of the batch, nil when none was left.
    private func backfillBatch(_ tx: PGTx, after: (String, String)) async throws -> (String, String)? {
        let rows = try await tx.rows("""
            SELECT app, device_id, data, pending FROM devices WHERE (app, device_id) > (\(after.0), \(after.1))
            ORDER BY app, device_id LIMIT 1000 FOR UPDATE
            """)
        var last: (String, String)?
        var (apps, ids, keys) = ([String](), [String](), [String]())
        for row in rows {
            let (app, id, data, pending) = try row.decode((String, String, Data, Int).self)
            last = (app, id)
            let device = DeviceKey(appCode: app, deviceId: id)
            let state = try Codec.open(DeviceState.self, data, sealer)
            let queued = pending > 0 ? try await PostgresRows.queued(tx, device, sealer).map(\.intent) : []
            guard let key = ContactKey.of(state, queued: queued, sealer: sealer) else { continue }
            apps.append(app)
            ids.append(id)
            keys.append(key)
        }
        if !keys.isEmpty {
            try await tx.exec("""
                UPDATE devices d SET contact_key = v.k FROM unnest(\(apps)::text[], \(ids)::text[], \(keys)::text[]) AS v(app, id, k)
                WHERE d.app = v.app AND d.device_id = v.id
                """)
        }
        return last
    }
}
