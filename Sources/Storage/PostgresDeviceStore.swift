import ConcurrencySupport
import Foundation
import Logging
import PostgresNIO
import Workflow

/// Devices and their queued intents in PostgreSQL, shared by several instances of the bridge.
///
/// Same protocol and semantics as `SQLiteDeviceStore`, plus what sharing needs:
/// - `claimDue` leases devices with `FOR UPDATE SKIP LOCKED`, so two instances never take the same device;
///   a lease that is not given back (a crashed instance) expires and another instance takes the device.
/// - `commit` is fenced by the lease owner: after the lease was lost it changes nothing and throws
///   `StorageError.leaseLost`.
/// - API writes of several instances on one device or one token hash serialise on advisory and row locks.
/// - `listenForWork` delivers `NOTIFY`s sent by accepts on any instance.
///
/// The client must run: call `run()` (a `Service` in the server's group) before or while calling
/// `migrate()`. Every other method waits until `migrate()` has succeeded.
public final class PostgresDeviceStore: DeviceStore {

    public static let workChannel = "pushbridge_work"

    public let client: PostgresClient
    let sealer: Sealer
    let logger: Logger
    let settings: Settings
    let ready = OneShot<Void>()
    /// Opens when `run()` starts the pool.
    let running = OneShot<Void>()
    /// The lease duration of the last claim, in ms: commits renew the lease by it.
    private let leaseMs = LockedValue<Int64>(120_000)

    public init(settings: Settings, sealer: Sealer, logger: Logger) {
        self.settings = settings
        self.sealer = sealer
        self.logger = logger
        client = PostgresClient(configuration: settings.clientConfiguration, backgroundLogger: logger)
    }

    public convenience init(url: String, poolSize: Int = 10, sealer: Sealer, logger: Logger) throws {
        self.init(settings: try Settings(url: url, poolSize: poolSize), sealer: sealer, logger: logger)
    }

    /// Runs the connection pool until cancelled (a `Service` of the server's group).
    public func run() async throws {
        running.succeed(())
        try await client.run()
    }

    /// Resolves when `migrate()` succeeded; throws when it failed.
    public func waitUntilReady() async throws {
        try await ready.value()
    }

    public func migrate() async throws {
        // Connections are leased only once the pool runs (PostgresNIO warns about a lease before `run()`).
        try await running.value()
        do {
            if let schema = settings.schema {
                // Two instances starting at once both run this; `IF NOT EXISTS` is not safe against that (the loser
                // gets a unique violation, 23505), which a second try finds done.
                for attempt in 1...3 {
                    do {
                        try await client.query(PostgresQuery(unsafeSQL: "CREATE SCHEMA IF NOT EXISTS \"\(schema)\""), logger: logger)
                        break
                    } catch let error as PSQLError where attempt < 3 && error.serverInfo?[.sqlState] == "23505" {
                        try await Task.sleep(for: .milliseconds(50))
                    }
                }
            }
            try await transaction(retries: 3) { tx in
                // One instance of a schema migrates at a time; the others find the work done. The lock is per schema:
                // bridges on other schemas of the same server (the tests run many at once) do not wait for each other.
                try await tx.exec("SELECT pg_advisory_xact_lock(7385012, hashtext(current_schema()))")
                try await PostgresSchema.migrate(tx.conn, logger: tx.logger)
                let check = try await tx.rows("SELECT value FROM meta WHERE name = 'key-check'").first
                if let check {
                    let sealed = try check.decode(Data.self)
                    guard (try? self.sealer.open(sealed)) == Sealer.checkPlaintext else { throw StorageError.wrongKey }
                } else {
                    let sealed = try self.sealer.seal(Sealer.checkPlaintext)
                    try await tx.exec("INSERT INTO meta(name, value) VALUES ('key-check', \(sealed))")
                }
                // Leases are kept: other instances may hold them. Expired ones are taken over by claimDue.
            }
            try await backfillContactKeys()
            ready.succeed(())
        } catch {
            ready.resolve(.failure(error))
            throw error
        }
    }

    /// The pool ends with `run()`'s task; nothing else to close.
    public func close() async throws {}

    public var mayStall: Bool { true }

    public func ping() async throws {
        try Self.checkMigrated(ready)
        let now = Data(String(Int64(Date().timeIntervalSince1970 * 1000)).utf8)
        try await client.query(
            "INSERT INTO meta(name, value) VALUES ('probe', \(now)) ON CONFLICT(name) DO UPDATE SET value = excluded.value",
            logger: logger)
    }

    // MARK: API side

    public func accept(
        _ write: DeviceWrite, for key: DeviceKey, policy: AppPolicy, limits: QueueLimits, newClientId: String, now: Date
    ) async throws -> AcceptResult {
        try await ready.value()
        // A write that would change nothing is answered from a read-only snapshot, without locks; everything
        // else is decided again under the locks of the write transaction.
        if let unchanged = try await withTx(snapshot: true, { tx in
            try await PostgresIntake(tx: tx, key: key, now: now, sealer: self.sealer).unchangedOutcome(write, policy: policy)
        }) {
            return unchanged
        }
        return try await transaction { tx in
            try await PostgresIntake(tx: tx, key: key, now: now, sealer: self.sealer).accept(write, policy: policy, limits: limits, newClientId: newClientId)
        }
    }

    public func invalidate(tokenHash: String, app: String, now: Date) async throws -> [DeviceSnapshot] {
        try await ready.value()
        // No holder on a read-only snapshot: nothing to change, and no lock taken.
        guard try await withTx(snapshot: true, { tx in try await PostgresIntake.holder(tx, app: app, tokenHash: tokenHash) }) != nil else { return [] }
        return try await transaction { tx in
            try await PostgresIntake.invalidate(tx, app: app, tokenHash: tokenHash, now: now, sealer: self.sealer).map { [$0] } ?? []
        }
    }

    public func snapshot(of key: DeviceKey) async throws -> DeviceSnapshot? {
        try await ready.value()
        // One statement: no transaction around it (one round trip instead of three).
        return try await client.withConnection { conn in
            try await PostgresRows.device(PGTx(conn: conn, logger: self.logger), key, self.sealer)?.snapshot
        }
    }

    public func list(app: String, state: String?, limit: Int, after cursor: String?) async throws -> DevicePage {
        try await ready.value()
        let after = cursor.flatMap(Codec.deviceId(fromCursor:)) ?? ""
        return try await withTx { tx in
            let cols = PostgresRows.deviceColumns
            let rows: [PostgresRow]
            if let state {
                rows = try await tx.rows("""
                    SELECT \(unescaped: cols) FROM devices WHERE app = \(app) AND device_id > \(after) AND state = \(state)
                    ORDER BY device_id LIMIT \(limit + 1)
                    """)
            } else {
                rows = try await tx.rows("""
                    SELECT \(unescaped: cols) FROM devices WHERE app = \(app) AND device_id > \(after) ORDER BY device_id LIMIT \(limit + 1)
                    """)
            }
            let devices = try rows.prefix(limit).map { try PostgresRows.DeviceRow(row: $0, sealer: self.sealer).snapshot }
            let next = rows.count > limit ? devices.last.map { Codec.cursor(after: $0.registration.key.deviceId) } : nil
            return DevicePage(devices: devices, nextCursor: next)
        }
    }

    public func queuedIntents() async throws -> (total: Int, perApp: [String: Int]) {
        try await ready.value()
        return try await withTx { tx in
            var perApp: [String: Int] = [:]
            for row in try await tx.rows("SELECT app, SUM(queued)::BIGINT FROM queue_counts GROUP BY app") {
                let (app, n) = try row.decode((String, Int64).self)
                perApp[app] = Int(n)
            }
            return (perApp.values.reduce(0, +), perApp)
        }
    }

    public func overview(app: String?, failures: Int) async throws -> StoreOverview {
        try await ready.value()
        return try await withTx(snapshot: true) { tx in
            var apps: [String: StoreOverview.AppCounts] = [:]
            let grouped = try await tx.rows("""
                SELECT app, state, provider, COUNT(*) FROM devices WHERE (\(app)::TEXT IS NULL OR app = \(app)) GROUP BY app, state, provider
                """)
            for row in grouped {
                let (a, state, provider, n64) = try row.decode((String, String, String?, Int64).self)
                let n = Int(n64)
                apps[a, default: .init()].total += n
                apps[a, default: .init()].byState[state, default: 0] += n
                apps[a, default: .init()].byProvider[provider ?? "none", default: 0] += n
            }
            for row in try await tx.rows("""
                SELECT app, SUM(queued)::BIGINT FROM queue_counts WHERE (\(app)::TEXT IS NULL OR app = \(app)) GROUP BY app
                """) {
                let (a, n) = try row.decode((String, Int64).self)
                apps[a, default: .init()].queuedIntents = Int(n)
            }
            let oldest = try await tx.rows("SELECT MIN(due_at) FROM devices WHERE due_at IS NOT NULL").first
                .flatMap { try $0.decode(Int64?.self) }.map(Codec.date)
            var recent: [StoreOverview.Failure] = []
            let failed = try await tx.rows("""
                SELECT \(unescaped: PostgresRows.deviceColumns) FROM devices
                WHERE state = 'failed' AND (\(app)::TEXT IS NULL OR app = \(app)) ORDER BY updated_at DESC LIMIT \(failures)
                """)
            for row in failed {
                let device = try PostgresRows.DeviceRow(row: row, sealer: self.sealer)
                guard let e = device.state.lastError else { continue }
                recent.append(.init(appCode: device.key.appCode, deviceId: device.key.deviceId, step: e.step, status: e.status, message: e.message, at: Timestamp.iso(e.at)))
            }
            return StoreOverview(apps: apps, oldestDueAt: oldest, recentFailures: recent)
        }
    }

    // MARK: Engine side

    public func claimDue(now: Date, limit: Int, owner: String, lease: Duration, except held: Set<DeviceKey>) async throws -> [DeviceKey] {
        try await ready.value()
        let nowMs = Codec.ms(now)
        let ms = lease.wholeMilliseconds
        leaseMs.set(ms)
        let until = nowMs + ms
        // Unit separator between app and device id: neither can hold one.
        let skipped = held.map { $0.appCode + "\u{1F}" + $0.deviceId }
        return try await transaction(synchronous: false) { tx in
            // Locked rows are skipped: another instance is claiming or committing them right now.
            let rows = try await tx.rows(PGStatement.ClaimDue.self, """
                WITH due AS (
                    SELECT app, device_id FROM devices
                    WHERE due_at <= \(nowMs) AND (lease_until IS NULL OR lease_until < \(nowMs))
                    AND NOT (app || chr(31) || device_id) = ANY(\(skipped))
                    ORDER BY due_at LIMIT \(limit)
                    FOR UPDATE SKIP LOCKED
                )
                UPDATE devices d SET lease_owner = \(owner), lease_until = \(until)
                FROM due WHERE d.app = due.app AND d.device_id = due.device_id
                RETURNING d.app, d.device_id, d.due_at
                """)
            return try rows.map { try $0.decode((String, String, Int64).self) }
                .sorted { $0.2 < $1.2 }
                .map { DeviceKey(appCode: $0.0, deviceId: $0.1) }
        }
    }

    public func nextDueAt() async throws -> Date? {
        try await ready.value()
        return try await withTx { tx in
            // A leased device is due for someone else only when its lease has expired.
            try await tx.rows(PGStatement.NextDueAt.self, """
                SELECT MIN(GREATEST(due_at, COALESCE(lease_until + 1, due_at))) FROM devices WHERE due_at IS NOT NULL
                """).first.flatMap { try $0.decode(Int64?.self) }.map(Codec.date)
        }
    }

    public func loadWork(_ key: DeviceKey) async throws -> Work? {
        try await ready.value()
        return try await withTx(snapshot: true) { tx in try await Self.work(tx, key, self.sealer) }
    }

    private static func work(_ tx: PGTx, _ key: DeviceKey, _ sealer: Sealer) async throws -> Work? {
        guard let device = try await PostgresRows.device(tx, key, sealer) else { return nil }
        let queue = try await PostgresRows.queued(tx, key, sealer, limit: QueueWindow.size)
        let newest: Int64
        if let whole = QueueWindow.newestIfWhole(queue.map(\.intent)) {
            newest = whole
        } else {
            newest = try await tx.rows(PGStatement.NewestIntent.self, "SELECT MAX(id) FROM intents WHERE app = \(key.appCode) AND device_id = \(key.deviceId)")
                .first.flatMap { try $0.decode(Int64?.self) } ?? 0
        }
        var blocked = false
        if let head = queue.first, let hash = head.tokenHash {
            // The token is still being released by another device (whichever: the claims may have moved on).
            blocked = try await tx.rows(PGStatement.ReleasePending.self, """
                SELECT EXISTS(SELECT 1 FROM intents WHERE app = \(key.appCode) AND token_hash = \(hash) AND kind = 'release' AND device_id <> \(key.deviceId))
                """).first.map { try $0.decode(Bool.self) } ?? false
        }
        return Work(state: device.state, queue: queue.map(\.intent), moveBlocked: blocked, newestIntentId: newest)
    }

    public func commit(_ key: DeviceKey, _ update: WorkUpdate, now: Date) async throws {
        try await ready.value()
        let renew = leaseMs.get()
        try await transaction(synchronous: false) { tx in
            try await PostgresCommit(tx: tx, key: key, now: now, sealer: self.sealer, leaseMs: renew).apply(update)
        }
    }

    /// The commit, then the read in the same transaction (it sees the commit's rows and any intent committed
    /// meanwhile, as a separate `loadWork` would); a failed read is rolled back to its savepoint alone.
    public func commitAndLoad(_ key: DeviceKey, _ update: WorkUpdate, now: Date) async throws -> Work? {
        try await ready.value()
        let renew = leaseMs.get()
        let loaded = try await transaction(synchronous: false) { tx in
            try await PostgresCommit(tx: tx, key: key, now: now, sealer: self.sealer, leaseMs: renew).apply(update)
            // A failed read must not undo the commit (PostgreSQL would roll back the whole transaction).
            try await tx.exec("SAVEPOINT load")
            do {
                return Result<Work?, any Error>.success(try await Self.work(tx, key, self.sealer))
            } catch {
                try await tx.exec("ROLLBACK TO SAVEPOINT load")
                return .failure(error)
            }
        }
        return try loaded.get()
    }

    public func releaseLeases(owner: String, except working: Set<DeviceKey>) async throws -> Int {
        try await ready.value()
        return try await transaction(synchronous: false) { tx in
            let held = try await tx.rows("SELECT app, device_id FROM devices WHERE lease_owner = \(owner) FOR UPDATE")
                .map { try $0.decode((String, String).self) }
                .map { DeviceKey(appCode: $0.0, deviceId: $0.1) }
                .filter { !working.contains($0) }
            for key in held {
                try await tx.exec("""
                    UPDATE devices SET lease_owner = NULL, lease_until = NULL
                    WHERE app = \(key.appCode) AND device_id = \(key.deviceId) AND lease_owner = \(owner)
                    """)
            }
            return held.count
        }
    }

    public func releaseLease(_ key: DeviceKey, owner: String) async throws {
        try await ready.value()
        try await client.withConnection { conn in
            try await PGTx(conn: conn, logger: self.logger).exec(PGStatement.ReleaseLease.self, """
                UPDATE devices SET lease_owner = NULL, lease_until = NULL
                WHERE app = \(key.appCode) AND device_id = \(key.deviceId) AND lease_owner = \(owner)
                """)
        }
    }
}
