import PostgresNIO
import Synchronization

/// The store's frequent statements, prepared by PostgreSQL once per connection and after that only bound and
/// executed: no parse and no plan per call, and shorter messages both ways.
///
/// A call site names its statement with a tag type (`tx.rows(PGStatement.Device.self, "SELECT ...")`) and writes
/// the SQL with PostgresNIO's interpolation as before: the interpolation gives the `$n` text, prepared under the
/// tag's name on first use, and the values, bound at each call. One tag serves one SQL text.
///
/// PgBouncer in transaction mode needs `max_prepared_statements` (PgBouncer 1.21 or later) for these.
enum PGStatement {
    // Rows
    enum Device {}
    enum DeviceForUpdate {}
    enum Queued {}
    enum AdjustQueued {}
    enum PendingCount {}
    enum DeleteAllIntents {}
    enum DeleteIntent {}
    enum DeleteIntentsUpTo {}
    enum DeleteForgottenIntents {}
    enum DeleteClaimsButQueued {}
    enum ResetNotified {}
    enum InsertIntent {}
    enum QueuedCounts {}
    // Engine steps
    enum LeaseForUpdate {}
    enum IntentKind {}
    enum IntentProgress {}
    enum CountAndNewest {}
    enum CommitStep {}
    enum WakeWaitingDevices {}
    enum ClearWaitsFor {}
    enum IntentsAfter {}
    enum DeleteClaims {}
    enum DeleteDevice {}
    enum ClaimDue {}
    enum NextDueAt {}
    enum NewestIntent {}
    enum ReleasePending {}
    enum ReleaseLease {}
    enum RenewLeases {}
    // API writes
    enum LockKey {}
    enum LockDeviceRow {}
    enum Notify {}
    enum TokenHolder {}
    enum InsertDevice {}
    enum DeleteClaimOfHolder {}
    enum ReleaseTokenAtHolder {}
    enum InsertClaim {}
    enum DeleteClaimsExcept {}
    enum RewriteIntent {}
    enum Touch {}
    enum StateColumn {}
    enum ContactDevices {}
    enum ContactKeyOf {}
    // Webhook outbox
    enum InsertWebhook {}
    enum ClaimWebhooks {}
    enum WebhookDelivered {}
    enum WebhookRetry {}
    enum WebhookBacklog {}
    enum DropWebhooks {}
    // History
    enum AppendHistory {}
    enum DeviceExists {}
    enum History {}
    enum TrimHistoryAge {}
    enum CapHistory {}
    enum StateTransition {}
    enum DeleteHistory {}
    // Idempotency keys
    enum ClaimIdempotencyKey {}
    enum ReadIdempotencyKey {}
    enum SettleIdempotencyKey {}
    enum ReleaseIdempotencyKey {}
    enum PurgeIdempotencyKeys {}
    // Retention
    enum MarkSeen {}
    enum TakeSweep {}
    enum StillStale {}
    enum StaleDevices {}
    enum ForgettableDevices {}
    enum RetentionMark {}
    // Re-drive
    enum FailedDevices {}
    enum WakeFailed {}
    enum LockFailed {}
}

/// A tagged statement as PostgresNIO's prepared statement.
struct PGPrepared<Tag>: PostgresPreparedStatement {
    typealias Row = PostgresRow

    /// Short (PostgreSQL cuts names at 63 bytes) and unique per tag.
    static var name: String { "pushbridge_" + String(describing: Tag.self) }
    static var sql: String { PGStatementTexts.text(of: Tag.self) }

    let bindings: PostgresBindings

    func makeBindings() throws -> PostgresBindings { bindings }
    func decodeRow(_ row: PostgresRow) throws -> PostgresRow { row }
}

/// The SQL text of each tag, as its first use wrote it.
enum PGStatementTexts {
    private static let texts = Mutex<[ObjectIdentifier: String]>([:])

    /// Records `sql` for `tag`; false when the tag already stands for another text (a programming error: the
    /// caller then runs the query unprepared, and debug builds stop here).
    static func register(_ tag: Any.Type, _ sql: String) -> Bool {
        let matches = texts.withLock { texts -> Bool in
            let id = ObjectIdentifier(tag)
            if let known = texts[id] { return known == sql }
            texts[id] = sql
            return true
        }
        assert(matches, "the statement tag \(tag) is used for two SQL texts")
        return matches
    }

    static func text(of tag: Any.Type) -> String {
        texts.withLock { $0[ObjectIdentifier(tag)] ?? "" }
    }
}

extension PGTx {
    /// Runs `query` as the prepared statement `tag`; its rows.
    func rows<Tag>(_ tag: Tag.Type, _ query: PostgresQuery) async throws -> [PostgresRow] {
        guard PGStatementTexts.register(tag, query.sql) else { return try await rows(query) }
        var rows: [PostgresRow] = []
        for try await row in try await conn.execute(PGPrepared<Tag>(bindings: query.binds), logger: logger) {
            rows.append(row)
        }
        return rows
    }

    func exec<Tag>(_ tag: Tag.Type, _ query: PostgresQuery) async throws {
        _ = try await rows(tag, query)
    }

    /// Rows changed by an UPDATE/DELETE with `RETURNING 1`.
    func count<Tag>(_ tag: Tag.Type, _ query: PostgresQuery) async throws -> Int {
        try await rows(tag, query).count
    }
}
