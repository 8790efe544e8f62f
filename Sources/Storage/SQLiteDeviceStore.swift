import Foundation
import GRDB
import Workflow

/// The embedded default: one SQLite file in WAL mode, through GRDB's pool (one writer, concurrent readers).
///
/// One instance per file: leases live in the file too, but are cleared at open, because no other
/// process may work the same file.
public final class SQLiteDeviceStore: DeviceStore {
    let pool: DatabasePool
    /// Read-only connections for the synchronous point reads alone (see `readInPlace`). They must not come from
    /// `pool`: an asynchronous read gives its connection back only once it runs again on one of the executor's
    /// threads (Swift's pool, or the server's two event loops), so synchronous reads waiting for a connection of
    /// the same pool on every such thread would deadlock (a test hammers both kinds at once, on both executors).
    let pointReads: DatabasePool
    let sealer: Sealer
    /// Every write after the migrations goes through group commit.
    let writes: SQLiteGroupCommit
    public let path: String

    /// - Parameters:
    ///   - sealer: the encryption of device data at rest; see `Sealer`.
    ///   - readOnly: for tools that look at a store a running server owns (`pushbridge status`).
    public init(path: String, sealer: Sealer, readOnly: Bool = false) throws {
        self.path = path
        self.sealer = sealer
        let dir = (path as NSString).deletingLastPathComponent
        if !dir.isEmpty && !readOnly { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        var config = Configuration()
        config.readonly = readOnly
        config.busyMode = .timeout(5)
        config.maximumReaderCount = 4
        config.prepareDatabase { db in
            // A new database gets 8 KB pages (an existing one keeps its own; only VACUUM outside WAL could change
            // it). With 4 KB pages a device row with its sealed state (~1 KB) spilled into an overflow page of its
            // own and interior pages held few keys, so a lookup among a million devices walked more pages.
            try db.execute(sql: "PRAGMA page_size = 8192")
            try db.execute(sql: "PRAGMA synchronous = NORMAL")  // WAL + NORMAL: durable across process crashes
        }
        pool = try DatabasePool(path: path, configuration: config)
        var pointConfig = config
        pointConfig.readonly = true
        // One connection per thread that can run a point read at once: the executor's threads.
        pointConfig.maximumReaderCount = max(2, ProcessInfo.processInfo.activeProcessorCount)
        pointReads = try DatabasePool(path: path, configuration: pointConfig)
        writes = SQLiteGroupCommit(pool: pool)
    }

    public func migrate() async throws {
        try SQLiteSchema.migrator.migrate(pool)
        let sealer = self.sealer
        try await pool.write { db in
            // The key check: written on first start, verified on every later one.
            if let check = try Data.fetchOne(db, sql: "SELECT value FROM meta WHERE name = 'key-check'") {
                guard (try? sealer.open(check)) == Sealer.checkPlaintext else { throw StorageError.wrongKey }
            } else {
                try db.execute(sql: "INSERT INTO meta(name, value) VALUES ('key-check', ?)", arguments: [try sealer.seal(Sealer.checkPlaintext)])
            }
            try db.execute(sql: "UPDATE devices SET lease_owner = NULL, lease_until = NULL WHERE lease_owner IS NOT NULL")
            try self.backfillContactKeys(db)
        }
    }

    public func close() async throws {
        try pointReads.close()
        try pool.close()
    }

    public var mayStall: Bool { false }

    public func ping() async throws {
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        try await writes.write { db in
            try db.execute(
                sql: "INSERT INTO meta(name, value) VALUES ('probe', ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                arguments: [String(now).data(using: .utf8)!])
        }
    }

    // MARK: API side

    public func accept(
        _ write: DeviceWrite, for key: DeviceKey, policy: AppPolicy, limits: QueueLimits, newClientId: String, now: Date
    ) async throws -> AcceptResult {
        let sealer = self.sealer
        // A write that would change nothing (deduplicated, or for an unknown device) is answered from a read
        // snapshot, beside other readers; everything else is decided again inside the write transaction.
        if let unchanged = try readInPlace({ db in
            try SQLiteIntake(db: db, key: key, now: now, sealer: sealer).unchangedOutcome(write, policy: policy)
        }) {
            return unchanged
        }
        return try await writes.write { db in
            try SQLiteIntake(db: db, key: key, now: now, sealer: sealer).accept(write, policy: policy, limits: limits, newClientId: newClientId)
        }
    }

    public func invalidate(tokenHash: String, app: String, now: Date) async throws -> [DeviceSnapshot] {
        let sealer = self.sealer
        // No holder on a read snapshot: nothing to change, and no turn in the write queue taken.
        guard try readInPlace({ db in try SQLiteIntake.holder(db, app: app, tokenHash: tokenHash) }) != nil else { return [] }
        return try await writes.write { db in
            guard let holder = try SQLiteIntake.holder(db, app: app, tokenHash: tokenHash) else { return [] }
            return try SQLiteIntake(db: db, key: holder, now: now, sealer: sealer).release(tokenHash, cause: .invalidated).map { [$0] } ?? []
        }
    }

    // Point reads (a status, a deduplicated write's snapshot, an engine load) take a few dozen microseconds:
    // they run on the calling thread through GRDB's synchronous `read` on `pointReads`, which saves the two
    // thread hops of the async `read`, worth more than the read itself. Listings and overviews, which may scan,
    // stay on `pool`'s reader queues.

    /// A synchronous read in one read transaction (one snapshot), as GRDB's `read` makes it, but with its BEGIN
    /// and COMMIT taken from the connection's statement cache: `read` compiles both anew for every read, a few
    /// per cent of a deduplicated write. (A sync function, so that overload resolution does not pick an async one.)
    private func readInPlace<T>(_ body: (Database) throws -> T) throws -> T {
        try pointReads.unsafeRead { db in
            try db.cachedStatement(sql: "BEGIN DEFERRED TRANSACTION").execute()
            let value: T
            do {
                value = try body(db)
            } catch {
                if db.isInsideTransaction { try? db.cachedStatement(sql: "COMMIT TRANSACTION").execute() }
                throw error
            }
            try db.cachedStatement(sql: "COMMIT TRANSACTION").execute()
            return value
        }
    }

    public func snapshot(of key: DeviceKey) async throws -> DeviceSnapshot? {
        try readInPlace { db in
            try SQLiteRows.device(db, key, sealer).map(\.snapshot)
        }
    }

    public func list(app: String, state: String?, limit: Int, after cursor: String?) async throws -> DevicePage {
        try await pool.read { db in
            let after = cursor.flatMap(Codec.deviceId(fromCursor:)) ?? ""
            var sql = "SELECT \(SQLiteRows.deviceColumns) FROM devices WHERE app = ? AND device_id > ?"
            var args: [DatabaseValueConvertible] = [app, after]
            if let state {
                sql += " AND state = ?"
                args.append(state)
            }
            sql += " ORDER BY device_id LIMIT ?"
            args.append(limit + 1)
            let rows = try Row.fetchAll(db, sql: sql, arguments: StatementArguments(args))
            var devices = try rows.prefix(limit).map { try SQLiteRows.DeviceRow(row: $0, sealer: sealer).snapshot }
            let next = rows.count > limit ? devices.last.map { Codec.cursor(after: $0.registration.key.deviceId) } : nil
            if devices.count > limit { devices.removeLast() }
            return DevicePage(devices: devices, nextCursor: next)
        }
    }

    public func queuedIntents() async throws -> (total: Int, perApp: [String: Int]) {
        try await pool.read { db in
            var perApp: [String: Int] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT app, queued FROM queue_counts") {
                perApp[row["app"]] = row["queued"]
            }
            return (perApp.values.reduce(0, +), perApp)
        }
    }

    public func overview(app: String?, failures: Int) async throws -> StoreOverview {
        try await pool.read { db in
            var apps: [String: StoreOverview.AppCounts] = [:]
            let filter = app == nil ? "" : " WHERE app = ?"
            let args: StatementArguments = app.map { [$0] } ?? []
            for row in try Row.fetchAll(db, sql: "SELECT app, state, provider, COUNT(*) AS n FROM devices\(filter) GROUP BY app, state, provider", arguments: args) {
                let n: Int = row["n"]
                let provider: String = row["provider"] ?? "none"
                apps[row["app"], default: .init()].total += n
                apps[row["app"], default: .init()].byState[row["state"], default: 0] += n
                apps[row["app"], default: .init()].byProvider[provider, default: 0] += n
            }
            for row in try Row.fetchAll(db, sql: "SELECT app, queued FROM queue_counts\(filter)", arguments: args) {
                apps[row["app"], default: .init()].queuedIntents = row["queued"]
            }
            let oldest = try Int64.fetchOne(db, sql: "SELECT MIN(due_at) FROM devices WHERE due_at IS NOT NULL").map(Codec.date)
            var recent: [StoreOverview.Failure] = []
            let failed = try Row.fetchAll(
                db, sql: "SELECT \(SQLiteRows.deviceColumns) FROM devices WHERE state = 'failed'\(app == nil ? "" : " AND app = ?") ORDER BY updated_at DESC LIMIT ?",
                arguments: StatementArguments((app.map { [$0] } ?? []) + [failures]))
            for row in failed {
                let device = try SQLiteRows.DeviceRow(row: row, sealer: sealer)
                guard let e = device.state.lastError else { continue }
                recent.append(.init(appCode: device.key.appCode, deviceId: device.key.deviceId, step: e.step, status: e.status, message: e.message, at: Timestamp.iso(e.at)))
            }
            return StoreOverview(apps: apps, oldestDueAt: oldest, recentFailures: recent)
        }
    }

    // MARK: Engine side

    public func claimDue(now: Date, limit: Int, owner: String, lease: Duration, except held: Set<DeviceKey>) async throws -> [DeviceKey] {
        let nowMs = Codec.ms(now)
        let until = nowMs + Int64(lease.components.seconds * 1000)
        return try await writes.write { db in
            // The held ones are skipped here, in the claim's own write transaction (at most as many as workers).
            let rows = try Row.fetchAll(
                db.cachedStatement(sql: """
                    SELECT app, device_id FROM devices
                    WHERE due_at <= ? AND (lease_until IS NULL OR lease_until < ?)
                    ORDER BY due_at LIMIT ?
                    """),
                arguments: [nowMs, nowMs, limit + held.count])
            let keys = Array(rows.lazy.map { DeviceKey(appCode: $0["app"], deviceId: $0["device_id"]) }.filter { !held.contains($0) }.prefix(limit))
            let statement = try db.cachedStatement(sql: "UPDATE devices SET lease_owner = ?, lease_until = ? WHERE app = ? AND device_id = ?")
            for key in keys {
                try statement.execute(arguments: [owner, until, key.appCode, key.deviceId])
            }
            return keys
        }
    }

    public func nextDueAt() async throws -> Date? {
        try await pool.read { db in
            // A leased device is due for a claim only when its lease has ended.
            try Int64.fetchOne(
                db, sql: "SELECT MIN(MAX(due_at, COALESCE(lease_until + 1, due_at))) FROM devices WHERE due_at IS NOT NULL"
            ).map(Codec.date)
        }
    }

    public func loadWork(_ key: DeviceKey) async throws -> Work? {
        let sealer = self.sealer
        return try readInPlace { db in try Self.work(db, key, sealer) }
    }

    /// The commit and the read in the same (grouped) write transaction.
    public func commitAndLoad(_ key: DeviceKey, _ update: WorkUpdate, now: Date) async throws -> Work? {
        let sealer = self.sealer
        let loaded = try await writes.write { db in
            let written = try SQLiteCommit(db: db, key: key, now: now, sealer: sealer).apply(update)
            // A failed read does not undo the commit, as a failed `loadWork` after `commit` would not. A step's
            // commit wrote `update.state` as the device's state (API writes never change it), so only the
            // queue is read back.
            return Result { try Self.work(db, key, sealer, state: written ? update.state : nil) }
        }
        return try loaded.get()
    }

    /// The device's work; `state`, when given, is the device's state as the caller just wrote it.
    private static func work(_ db: Database, _ key: DeviceKey, _ sealer: Sealer, state known: DeviceState? = nil) throws -> Work? {
        let state: DeviceState
        if let known {
            state = known
        } else {
            guard let device = try SQLiteRows.device(db, key, sealer) else { return nil }
            state = device.state
        }
        let queue = try SQLiteRows.queued(db, key, sealer, limit: QueueWindow.size)
        let head = queue.first
        let newest = try QueueWindow.newestIfWhole(queue.map(\.intent))
            ?? Int64.fetchOne(
                db.cachedStatement(sql: "SELECT MAX(id) FROM intents WHERE app = ? AND device_id = ?"), arguments: [key.appCode, key.deviceId]) ?? 0
        var blocked = false
        if let head, let hash = head.tokenHash {
            // The token is still being released by another device (whichever: the claims may have moved on).
            blocked = try Bool.fetchOne(
                db.cachedStatement(sql: "SELECT EXISTS(SELECT 1 FROM intents WHERE app = ? AND token_hash = ? AND kind = 'release' AND device_id <> ?)"),
                arguments: [key.appCode, hash, key.deviceId]) ?? false
        }
        return Work(state: state, queue: queue.map(\.intent), moveBlocked: blocked, newestIntentId: newest)
    }

    public func commit(_ key: DeviceKey, _ update: WorkUpdate, now: Date) async throws {
        let sealer = self.sealer
        try await writes.write { db in
            try SQLiteCommit(db: db, key: key, now: now, sealer: sealer).apply(update)
        }
    }

    public func releaseLeases(owner: String, except working: Set<DeviceKey>) async throws -> Int {
        try await writes.write { db in
            let held = try Row.fetchAll(db, sql: "SELECT app, device_id FROM devices WHERE lease_owner = ?", arguments: [owner])
                .map { DeviceKey(appCode: $0["app"], deviceId: $0["device_id"]) }
                .filter { !working.contains($0) }
            let statement = try db.cachedStatement(sql: "UPDATE devices SET lease_owner = NULL, lease_until = NULL WHERE app = ? AND device_id = ? AND lease_owner = ?")
            for key in held { try statement.execute(arguments: [key.appCode, key.deviceId, owner]) }
            return held.count
        }
    }

    public func releaseLease(_ key: DeviceKey, owner: String) async throws {
        try await writes.write { db in
            try db.cachedStatement(sql: "UPDATE devices SET lease_owner = NULL, lease_until = NULL WHERE app = ? AND device_id = ? AND lease_owner = ?")
                .execute(arguments: [key.appCode, key.deviceId, owner])
        }
    }
}
