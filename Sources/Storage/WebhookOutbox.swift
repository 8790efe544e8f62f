import Foundation
import GRDB
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
    }

    init(from r: inout StoredReader) throws {
        let key = DeviceKey(appCode: try r.string(), deviceId: try r.string())
        let registration = DeviceRegistration(
            key: key, provider: try String?(from: &r), platform: try r.string(), tokenHash: try String?(from: &r),
            pending: try Int(from: &r), updatedAt: try Date(from: &r))
        snapshot = DeviceSnapshot(registration: registration, state: try DeviceState(from: &r))
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
enum SQLiteOutbox {
    /// Up to `limit` due messages, each the oldest of its device and endpoint, none leased by anyone; leased to
    /// `owner` until `leaseUntil`.
    static func claim(_ db: Database, nowMs: Int64, limit: Int, owner: String, leaseUntilMs: Int64, sealer: Sealer) throws -> [OutboxMessage] {
        let rows = try Row.fetchAll(db.cachedStatement(sql: """
            SELECT id, msg_id, app, device_id, endpoint, event, reason, occurred_at, snapshot, attempts FROM webhook_outbox o
            WHERE next_attempt_at <= ? AND (lease_until IS NULL OR lease_until < ?)
            AND id = (SELECT MIN(id) FROM webhook_outbox p WHERE p.app = o.app AND p.device_id = o.device_id AND p.endpoint = o.endpoint)
            ORDER BY next_attempt_at LIMIT ?
            """), arguments: [nowMs, nowMs, limit])
        var messages: [OutboxMessage] = []
        for row in rows {
            let id: Int64 = row["id"]
            try db.cachedStatement(sql: "UPDATE webhook_outbox SET lease_owner = ?, lease_until = ? WHERE id = ?").execute(arguments: [owner, leaseUntilMs, id])
            let sealed: Data? = row["snapshot"]
            messages.append(OutboxMessage(
                id: id, msgId: row["msg_id"], key: DeviceKey(appCode: row["app"], deviceId: row["device_id"]), endpoint: row["endpoint"],
                event: row["event"], reason: row["reason"], occurredAt: Codec.date(row["occurred_at"]),
                snapshot: try sealed.map { try Codec.openSnapshot($0, sealer) }, attempts: row["attempts"]))
        }
        return messages
    }

    /// Records what became of the attempt on message `id`, if `owner` still holds it.
    static func settle(_ db: Database, id: Int64, owner: String, _ settlement: OutboxSettlement) throws {
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

    /// How many messages wait, and since when the oldest.
    static func backlog(_ db: Database) throws -> (count: Int, oldest: Date?) {
        let row = try Row.fetchOne(db, sql: "SELECT COUNT(*) AS n, MIN(occurred_at) AS oldest FROM webhook_outbox")
        let oldest: Int64? = row?["oldest"]
        return (row?["n"] ?? 0, oldest.map(Codec.date))
    }
}
