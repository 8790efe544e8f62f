import Foundation
import GRDB
import PostgresNIO
import Workflow

/// One line of a device's history (`GET .../devices/{id}/history`): what the backend asked for, what was sent to
/// ME and what came back, the states the device went through, the webhook attempts. Ids, names and numbers only:
/// never a token, a contact value or a secret.
public enum HistoryEntry: Sendable, Hashable {
    /// An API write for the device: `start`, `push-token`, `push-token-removal`, `login`, `logout`, `events`,
    /// `delete`, `invalidate`; whether it changed nothing; the request's `X-Request-Id`.
    case intent(name: String, deduplicated: Bool, requestId: String?)
    /// An ME call: the endpoint as in the metrics, the status (nil: a network error), the attempt, how long it took.
    case call(endpoint: String, status: Int?, attempt: Int, durationMs: Int)
    /// The contract's state changed.
    case state(from: String, to: String)
    /// A webhook delivery attempt: the event, the status (nil: a timeout or a connection error), the attempt.
    case webhook(event: String, status: Int?, attempt: Int)

    public var kind: String {
        switch self {
        case .intent: "intent"
        case .call: "call"
        case .state: "state"
        case .webhook: "webhook"
        }
    }

    /// The entry's own members, as the API shows them beside `at` and `kind`.
    public var members: [(String, HistoryValue)] {
        switch self {
        case .intent(let name, let deduplicated, let requestId):
            [("intent", .string(name)), ("deduplicated", .bool(deduplicated)), ("requestId", requestId.map(HistoryValue.string) ?? .null)]
        case .call(let endpoint, let status, let attempt, let durationMs):
            [("endpoint", .string(endpoint)), ("status", status.map(HistoryValue.int) ?? .null), ("attempt", .int(attempt)), ("durationMs", .int(durationMs))]
        case .state(let from, let to):
            [("from", .string(from)), ("to", .string(to))]
        case .webhook(let event, let status, let attempt):
            [("event", .string(event)), ("status", status.map(HistoryValue.int) ?? .null), ("attempt", .int(attempt))]
        }
    }

    /// The stored form: `kind`, and the members in a fixed order separated by the unit separator (none of the
    /// values can hold one: names, ids and numbers).
    var detail: String {
        members.map { $0.1.text }.joined(separator: "\u{1F}")
    }

    init?(kind: String, detail: String) {
        let parts = detail.split(separator: "\u{1F}", omittingEmptySubsequences: false).map(String.init)
        func int(_ i: Int) -> Int? { parts.count > i ? Int(parts[i]) : nil }
        func string(_ i: Int) -> String? { parts.count > i && parts[i] != HistoryValue.nullText ? parts[i] : nil }
        switch kind {
        case "intent":
            guard let name = string(0) else { return nil }
            self = .intent(name: name, deduplicated: parts.count > 1 && parts[1] == "true", requestId: string(2))
        case "call":
            guard let endpoint = string(0), let attempt = int(2), let duration = int(3) else { return nil }
            self = .call(endpoint: endpoint, status: int(1), attempt: attempt, durationMs: duration)
        case "state":
            guard let from = string(0), let to = string(1) else { return nil }
            self = .state(from: from, to: to)
        case "webhook":
            guard let event = string(0), let attempt = int(2) else { return nil }
            self = .webhook(event: event, status: int(1), attempt: attempt)
        default:
            return nil
        }
    }
}

/// A member's value in a history entry.
public enum HistoryValue: Sendable, Hashable {
    case string(String)
    case int(Int)
    case bool(Bool)
    case null

    /// No value (a record separator: neither store takes NUL in text, and no name, id or number holds one).
    static let nullText = "\u{1E}"

    var text: String {
        switch self {
        case .string(let s): s
        case .int(let n): String(n)
        case .bool(let b): b ? "true" : "false"
        case .null: Self.nullText
        }
    }
}

/// An entry with its device and time.
public struct HistoryRecord: Sendable, Hashable {
    public var key: DeviceKey
    public var at: Date
    public var entry: HistoryEntry

    public init(key: DeviceKey, at: Date, entry: HistoryEntry) {
        self.key = key
        self.at = at
        self.entry = entry
    }
}

/// History times are kept in microseconds, so that entries written apart (a batch of API writes and ME calls, the
/// state changes in the commits) still sort in the order they happened. A state change is stamped one microsecond
/// after the write that made it, so it is listed above the request or the answer that caused it, and never before
/// the device's previous state change: the writes of one device are serialised, but each took its time before it
/// waited for the others (an API write and an engine commit racing), and several instances have several clocks. So
/// the state changes, read newest first, always chain (`from` of one is `to` of the next).
enum HistoryTime {
    static func us(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1_000_000).rounded(.down)) }
    static func date(_ us: Int64) -> Date { Date(timeIntervalSince1970: Double(us) / 1_000_000) }
    static func stateChange(_ now: Date) -> Int64 { us(now) + 1 }
}

extension SQLiteRows {
    /// Writes a change of the device's state column into its history, in the caller's transaction (`HistoryTime`).
    static func recordStateChange(_ db: Database, _ key: DeviceKey, from: String?, to: String, now: Date) throws {
        guard let from, from != to else { return }
        try db.cachedStatement(sql: """
            INSERT INTO device_history(app, device_id, at, kind, detail)
            SELECT ?, ?, MAX(?, COALESCE((SELECT MAX(at) + 1 FROM device_history WHERE app = ? AND device_id = ? AND kind = 'state'), 0)), 'state', ?
            """).execute(arguments: [
                key.appCode, key.deviceId, HistoryTime.stateChange(now), key.appCode, key.deviceId, HistoryEntry.state(from: from, to: to).detail,
            ])
    }
}

extension PostgresRows {
    /// Writes a change of the device's state column into its history, in the caller's transaction (`HistoryTime`).
    static func recordStateChange(_ tx: PGTx, _ key: DeviceKey, from: String?, to: String, now: Date) async throws {
        guard let from, from != to else { return }
        let (at, detail) = (HistoryTime.stateChange(now), HistoryEntry.state(from: from, to: to).detail)
        try await tx.exec(PGStatement.StateTransition.self, """
            INSERT INTO device_history(app, device_id, at, kind, detail)
            SELECT \(key.appCode), \(key.deviceId), GREATEST(\(at), COALESCE((
                SELECT MAX(at) + 1 FROM device_history WHERE app = \(key.appCode) AND device_id = \(key.deviceId) AND kind = 'state'
            ), 0)), 'state', \(detail)
            """)
    }
}

extension SQLiteDeviceStore {
    public func appendHistory(_ records: [HistoryRecord], keepPerDevice: Int) async throws {
        guard !records.isEmpty else { return }
        try await writes.write { db in
            // Only for devices that exist, and not before the device was made: an entry recorded just before a
            // forget is not left behind, nor given to a device made again under the same id.
            let insert = try db.cachedStatement(sql: """
                INSERT INTO device_history(app, device_id, at, kind, detail)
                SELECT ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM devices WHERE app = ? AND device_id = ? AND created_at * 1000 <= ?)
                """)
            for r in records {
                let at = HistoryTime.us(r.at)
                try insert.execute(arguments: [r.key.appCode, r.key.deviceId, at, r.entry.kind, r.entry.detail, r.key.appCode, r.key.deviceId, at])
            }
            // The devices written to keep their newest `keepPerDevice` entries, newest as the history is read.
            let cap = try db.cachedStatement(sql: """
                DELETE FROM device_history WHERE id IN (
                    SELECT id FROM device_history WHERE app = ? AND device_id = ? ORDER BY at DESC, id DESC LIMIT -1 OFFSET ?
                )
                """)
            for key in Set(records.map(\.key)) {
                try cap.execute(arguments: [key.appCode, key.deviceId, keepPerDevice])
            }
        }
    }

    public func history(of key: DeviceKey, limit: Int) async throws -> [HistoryRecord]? {
        try await pool.read { db in
            guard try Bool.fetchOne(db, sql: "SELECT EXISTS(SELECT 1 FROM devices WHERE app = ? AND device_id = ?)", arguments: [key.appCode, key.deviceId]) == true else {
                return nil
            }
            let rows = try Row.fetchAll(db, sql: """
                SELECT at, kind, detail FROM device_history WHERE app = ? AND device_id = ? ORDER BY at DESC, id DESC LIMIT ?
                """, arguments: [key.appCode, key.deviceId, limit])
            return rows.compactMap { row in
                HistoryEntry(kind: row["kind"], detail: row["detail"]).map { HistoryRecord(key: key, at: HistoryTime.date(row["at"]), entry: $0) }
            }
        }
    }

    public func trimHistory(before: Date) async throws -> Int {
        try await writes.write { db in
            try db.execute(sql: "DELETE FROM device_history WHERE at < ?", arguments: [HistoryTime.us(before)])
            return db.changesCount
        }
    }
}

extension PostgresDeviceStore {
    public func appendHistory(_ records: [HistoryRecord], keepPerDevice: Int) async throws {
        guard !records.isEmpty else { return }
        try await ready.value()
        let apps = records.map(\.key.appCode)
        let devices = records.map(\.key.deviceId)
        let ats = records.map { HistoryTime.us($0.at) }
        let kinds = records.map(\.entry.kind)
        let details = records.map(\.entry.detail)
        let keep = Int64(keepPerDevice)
        try await transaction(synchronous: false) { tx in
            // Only for devices that exist, and not before the device was made: an entry recorded just before a
            // forget is not left behind, nor given to a device made again under the same id. The device row is
            // locked (KEY SHARE) until this commits, so a forget running meanwhile either deletes these entries with
            // the device or comes first and leaves nothing to insert them for.
            try await tx.exec(PGStatement.AppendHistory.self, """
                INSERT INTO device_history(app, device_id, at, kind, detail)
                SELECT r.app, r.device_id, r.at, r.kind, r.detail
                FROM unnest(\(apps)::text[], \(devices)::text[], \(ats)::bigint[], \(kinds)::text[], \(details)::text[]) AS r(app, device_id, at, kind, detail)
                WHERE EXISTS (
                    SELECT 1 FROM devices d WHERE d.app = r.app AND d.device_id = r.device_id AND d.created_at * 1000 <= r.at FOR KEY SHARE
                )
                """)
            // The devices written to keep their newest `keepPerDevice` entries, newest as the history is read.
            try await tx.exec(PGStatement.CapHistory.self, """
                DELETE FROM device_history WHERE id IN (
                    SELECT x.id FROM (SELECT DISTINCT app, device_id FROM unnest(\(apps)::text[], \(devices)::text[]) AS u(app, device_id)) t
                    CROSS JOIN LATERAL (
                        SELECT id FROM device_history h WHERE h.app = t.app AND h.device_id = t.device_id ORDER BY h.at DESC, h.id DESC OFFSET \(keep)
                    ) x
                )
                """)
        }
    }

    public func history(of key: DeviceKey, limit: Int) async throws -> [HistoryRecord]? {
        try await ready.value()
        return try await withTx(snapshot: true) { tx in
            let exists = try await tx.rows(PGStatement.DeviceExists.self, """
                SELECT EXISTS(SELECT 1 FROM devices WHERE app = \(key.appCode) AND device_id = \(key.deviceId))
                """).first.map { try $0.decode(Bool.self) } ?? false
            guard exists else { return nil }
            let rows = try await tx.rows(PGStatement.History.self, """
                SELECT at, kind, detail FROM device_history WHERE app = \(key.appCode) AND device_id = \(key.deviceId)
                ORDER BY at DESC, id DESC LIMIT \(Int64(limit))
                """)
            return try rows.compactMap { row in
                let (at, kind, detail) = try row.decode((Int64, String, String).self)
                return HistoryEntry(kind: kind, detail: detail).map { HistoryRecord(key: key, at: HistoryTime.date(at), entry: $0) }
            }
        }
    }

    public func trimHistory(before: Date) async throws -> Int {
        try await ready.value()
        let cutoff = HistoryTime.us(before)
        return try await transaction(synchronous: false) { tx in
            try await tx.count(PGStatement.TrimHistoryAge.self, "DELETE FROM device_history WHERE at < \(cutoff) RETURNING 1")
        }
    }
}
