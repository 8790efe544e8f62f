import Foundation
import GRDB
import PostgresNIO
import Workflow

/// A message of the webhook outbox, as a delivery worker claims it.
public struct OutboxMessage: Sendable, Hashable {
    /// The row's position: messages of one device and endpoint go in this order.
    public var id: Int64
    /// `webhook-id`: the same on every attempt.
    public var msgId: String
    public var key: DeviceKey
    public var endpoint: String
    /// `device.registered`, `device.failed`, `device.unregistered` or `device.deleted`.
    public var event: String
    public var reason: String?
    public var occurredAt: Date
    /// The device as the commit that made the message left it (nil for `device.deleted`).
    public var snapshot: DeviceSnapshot?
    /// Attempts made before this one.
    public var attempts: Int
}

/// How many messages wait, and since when the oldest.
public struct OutboxBacklog: Sendable, Hashable {
    public var count: Int
    public var oldest: Date?
    /// Messages waiting per endpoint (each endpoint has its own bound).
    public var perEndpoint: [String: Int]
    public init(count: Int, oldest: Date?, perEndpoint: [String: Int] = [:]) {
        self.count = count
        self.oldest = oldest
        self.perEndpoint = perEndpoint
    }
}

/// What became of one delivery attempt.
public enum OutboxSettlement: Sendable, Hashable {
    /// Answered 2xx: the message is done.
    case delivered
    /// Not answered 2xx: tried again at `at`.
    case retry(at: Date, status: Int?)
    /// Older than the maximum age (or its endpoint is no longer configured): dropped.
    case givenUp
}

/// The device of a message in the stored form: registration columns and engine state.
struct OutboxSnapshot: StoredCodable {
    var snapshot: DeviceSnapshot

    init(_ snapshot: DeviceSnapshot) { self.snapshot = snapshot }

    func write(to w: inout StoredWriter) {
        let r = snapshot.registration
        r.key.appCode.write(to: &w)
        r.key.deviceId.write(to: &w)
        r.provider.write(to: &w)
        r.platform.write(to: &w)
        r.tokenHash.write(to: &w)
        r.pending.write(to: &w)
        r.updatedAt.write(to: &w)
        snapshot.state.write(to: &w)
        r.lastSeenAt.write(to: &w)  // last: rows written before it end after the state
    }

    init(from r: inout StoredReader) throws {
        let key = DeviceKey(appCode: try r.string(), deviceId: try r.string())
        var registration = DeviceRegistration(
            key: key, provider: try String?(from: &r), platform: try r.string(), tokenHash: try String?(from: &r),
            pending: try Int(from: &r), updatedAt: try Date(from: &r))
        let state = try DeviceState(from: &r)
        if !r.atEnd { registration.lastSeenAt = try Date(from: &r) }
        snapshot = DeviceSnapshot(registration: registration, state: state)
    }
}

extension Codec {
    static func sealSnapshot(_ snapshot: DeviceSnapshot, _ sealer: Sealer) throws -> Data {
        try sealer.seal(Data(StoredForm.encode(OutboxSnapshot(snapshot))))
    }

    static func openSnapshot(_ data: Data, _ sealer: Sealer) throws -> DeviceSnapshot {
        try StoredForm.decode(OutboxSnapshot.self, from: sealer.open(data)).snapshot
    }
}

/// The outbox on SQLite: claims that keep each device and endpoint in order, and the settling of an attempt.
extension SQLiteDeviceStore {
    public func claimWebhooks(endpoint: String, now: Date, limit: Int, owner: String, lease: Duration) async throws -> [OutboxMessage] {
        let nowMs = Codec.ms(now)
        let until = nowMs + Int64(lease.components.seconds * 1000)
        let sealer = self.sealer
        return try await writes.write { db in
            // Only the oldest row of each device (for this endpoint) is a candidate: while it waits or is leased,
            // the ones after it wait too.
            let rows = try Row.fetchAll(db.cachedStatement(sql: """
                SELECT id, msg_id, app, device_id, endpoint, event, reason, occurred_at, snapshot, attempts FROM webhook_outbox o
                WHERE endpoint = ? AND next_attempt_at <= ? AND (lease_until IS NULL OR lease_until < ?)
                AND id = (SELECT MIN(id) FROM webhook_outbox p WHERE p.endpoint = o.endpoint AND p.app = o.app AND p.device_id = o.device_id)
                ORDER BY next_attempt_at LIMIT ?
                """), arguments: [endpoint, nowMs, nowMs, limit])
            let lease = try db.cachedStatement(sql: "UPDATE webhook_outbox SET lease_owner = ?, lease_until = ? WHERE id = ?")
            return try rows.map { row in
                let id: Int64 = row["id"]
                try lease.execute(arguments: [owner, until, id])
                let sealed: Data? = row["snapshot"]
                return OutboxMessage(
                    id: id, msgId: row["msg_id"], key: DeviceKey(appCode: row["app"], deviceId: row["device_id"]),
                    endpoint: row["endpoint"], event: row["event"], reason: row["reason"], occurredAt: Codec.date(row["occurred_at"]),
                    snapshot: try sealed.map { try Codec.openSnapshot($0, sealer) }, attempts: row["attempts"])
            }
        }
    }

    public func settleWebhook(id: Int64, owner: String, _ settlement: OutboxSettlement) async throws {
        try await writes.write { db in
            switch settlement {
            case .delivered, .givenUp:
                try db.cachedStatement(sql: "DELETE FROM webhook_outbox WHERE id = ? AND lease_owner = ?").execute(arguments: [id, owner])
            case .retry(let at, let status):
                try db.cachedStatement(sql: """
                    UPDATE webhook_outbox SET attempts = attempts + 1, next_attempt_at = ?, last_status = ?, lease_owner = NULL, lease_until = NULL
                    WHERE id = ? AND lease_owner = ?
                    """).execute(arguments: [Codec.ms(at), status, id, owner])
            }
        }
    }

    public func dropWebhooks(keeping endpoints: Set<String>, madeBefore: Date) async throws -> Int {
        try await writes.write { db in
            let kept = Array(endpoints)
            let placeholders = kept.isEmpty ? "''" : kept.map { _ in "?" }.joined(separator: ", ")
            try db.execute(
                sql: "DELETE FROM webhook_outbox WHERE occurred_at < ? AND endpoint NOT IN (\(placeholders))",
                arguments: StatementArguments([Codec.ms(madeBefore)]) + StatementArguments(kept))
            return db.changesCount
        }
    }

    public func webhookBacklog() async throws -> OutboxBacklog {
        try await pool.read { db in
            var backlog = OutboxBacklog(count: 0, oldest: nil)
            for row in try Row.fetchAll(db, sql: "SELECT endpoint, COUNT(*) AS n, MIN(occurred_at) AS oldest FROM webhook_outbox GROUP BY endpoint") {
                let n: Int = row["n"]
                let oldest = Codec.date(row["oldest"])
                backlog.perEndpoint[row["endpoint"]] = n
                backlog.count += n
                backlog.oldest = min(backlog.oldest ?? oldest, oldest)
            }
            return backlog
        }
    }
}

/// The outbox on PostgreSQL: as on SQLite; a claim skips rows another instance is claiming or settling right now, and
/// a leased row holds back the rows after it, so each device's messages to an endpoint are with one instance at a time.
extension PostgresDeviceStore {
    public func claimWebhooks(endpoint: String, now: Date, limit: Int, owner: String, lease: Duration) async throws -> [OutboxMessage] {
        try await ready.value()
        let nowMs = Codec.ms(now)
        let until = nowMs + Int64(lease.components.seconds * 1000)
        let sealer = self.sealer
        return try await transaction(synchronous: false) { tx in
            let rows = try await tx.rows(PGStatement.ClaimWebhooks.self, """
                WITH due AS (
                    SELECT id FROM webhook_outbox o
                    WHERE endpoint = \(endpoint) AND next_attempt_at <= \(nowMs) AND (lease_until IS NULL OR lease_until < \(nowMs))
                    AND id = (SELECT MIN(id) FROM webhook_outbox p WHERE p.endpoint = o.endpoint AND p.app = o.app AND p.device_id = o.device_id)
                    ORDER BY next_attempt_at LIMIT \(limit)
                    FOR UPDATE SKIP LOCKED
                )
                UPDATE webhook_outbox w SET lease_owner = \(owner), lease_until = \(until) FROM due WHERE w.id = due.id
                RETURNING w.id, w.msg_id, w.app, w.device_id, w.endpoint, w.event, w.reason, w.occurred_at, w.snapshot, w.attempts
                """)
            return try rows.map { row in
                let (id, msgId, app, device, endpoint, event, reason, occurredAt, sealed, attempts) = try row.decode(
                    (Int64, String, String, String, String, String, String?, Int64, Data?, Int32).self)
                return OutboxMessage(
                    id: id, msgId: msgId, key: DeviceKey(appCode: app, deviceId: device), endpoint: endpoint, event: event,
                    reason: reason, occurredAt: Codec.date(occurredAt), snapshot: try sealed.map { try Codec.openSnapshot($0, sealer) },
                    attempts: Int(attempts))
            }.sorted { $0.id < $1.id }
        }
    }

    public func settleWebhook(id: Int64, owner: String, _ settlement: OutboxSettlement) async throws {
        try await ready.value()
        try await transaction(synchronous: false) { tx in
            switch settlement {
            case .delivered, .givenUp:
                try await tx.exec(PGStatement.WebhookDelivered.self, "DELETE FROM webhook_outbox WHERE id = \(id) AND lease_owner = \(owner)")
            case .retry(let at, let status):
                let nextMs = Codec.ms(at)
                let code = status.map(Int32.init)
                try await tx.exec(PGStatement.WebhookRetry.self, """
                    UPDATE webhook_outbox SET attempts = attempts + 1, next_attempt_at = \(nextMs), last_status = \(code),
                        lease_owner = NULL, lease_until = NULL
                    WHERE id = \(id) AND lease_owner = \(owner)
                    """)
            }
        }
    }

    public func dropWebhooks(keeping endpoints: Set<String>, madeBefore: Date) async throws -> Int {
        try await ready.value()
        let kept = Array(endpoints)
        let before = Codec.ms(madeBefore)
        return try await transaction { tx in
            try await tx.count(PGStatement.DropWebhooks.self, """
                DELETE FROM webhook_outbox WHERE occurred_at < \(before) AND NOT (endpoint = ANY(\(kept))) RETURNING 1
                """)
        }
    }

    public func webhookBacklog() async throws -> OutboxBacklog {
        try await ready.value()
        return try await withTx { tx in
            var backlog = OutboxBacklog(count: 0, oldest: nil)
            for row in try await tx.rows(PGStatement.WebhookBacklog.self, "SELECT endpoint, COUNT(*), MIN(occurred_at) FROM webhook_outbox GROUP BY endpoint") {
                let (endpoint, n, oldestMs) = try row.decode((String, Int64, Int64).self)
                let oldest = Codec.date(oldestMs)
                backlog.perEndpoint[endpoint] = Int(n)
                backlog.count += Int(n)
                backlog.oldest = min(backlog.oldest ?? oldest, oldest)
            }
            return backlog
        }
    }
}
