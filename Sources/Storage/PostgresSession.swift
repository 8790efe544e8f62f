import ConcurrencySupport
import Foundation
import Logging
import PostgresNIO
import Workflow

/// How the PostgreSQL store talks to the server: the LISTEN loop that wakes the engine when another instance queued
/// work, the transaction runner with its retries, the session wrapper and the small synchronisation helpers.
extension PostgresDeviceStore {
    // MARK: Wake-ups across instances

    /// Calls `onWork` whenever any instance queued work (`NOTIFY pushbridge_work`), until cancelled.
    /// Holds one connection of the pool; reconnects after an error.
    public func listenForWork(_ onWork: @escaping @Sendable () -> Void) async {
        while !Task.isCancelled {
            do {
                try await ready.value()
                try await client.withConnection { conn in
                    try await conn.listen(on: Self.workChannel) { notifications in
                        onWork()  // anything queued while not listening
                        for try await _ in notifications { onWork() }
                    }
                }
            } catch {
                if Task.isCancelled { return }
                logger.warning("listening for work from other instances failed; retrying", metadata: ["error": "\(String(reflecting: error))"])
                try? await Task.sleep(for: .seconds(1))
            }
        }
    }

    // MARK: Transactions

    /// Runs `body` in a transaction (READ COMMITTED, row locks do the ordering) and retries it when
    /// PostgreSQL aborts it for a deadlock or a serialization failure.
    ///
    /// `synchronous: false` commits without waiting for the WAL flush (`synchronous_commit = off` for this
    /// transaction only): for engine steps and lease claims, whose loss in a PostgreSQL crash (the last few hundred ms)
    /// only repeats work, as a bridge crash between an ME answer and its commit does. API writes, the intents
    /// behind a 2xx, always wait for the flush.
    func transaction<T: Sendable>(retries: Int = 5, synchronous: Bool = true, _ body: @Sendable (PGTx) async throws -> T) async throws -> T {
        var attempt = 0
        while true {
            attempt += 1
            do {
                return try await run(begin: "BEGIN", synchronous ? body : { tx in
                    try await tx.exec("SET LOCAL synchronous_commit TO OFF")
                    return try await body(tx)
                })
            } catch let error as PSQLError where attempt <= retries && Self.isRetryable(error) {
                try await Task.sleep(for: .milliseconds(Int.random(in: 5...(20 * attempt))))
            }
        }
    }

    /// A read: one transaction, a consistent snapshot when `snapshot` (several statements).
    func withTx<T: Sendable>(snapshot: Bool = false, _ body: @Sendable (PGTx) async throws -> T) async throws -> T {
        try await run(begin: snapshot ? "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY" : "BEGIN READ ONLY", body)
    }

    /// `body` between `begin` and COMMIT on one pooled connection; ROLLBACK when it throws.
    private func run<T: Sendable>(begin: String, _ body: @Sendable (PGTx) async throws -> T) async throws -> T {
        try await client.withConnection { conn in
            let tx = PGTx(conn: conn, logger: self.logger)
            try await tx.exec(PostgresQuery(unsafeSQL: begin))
            do {
                let value = try await body(tx)
                try await tx.exec("COMMIT")
                return value
            } catch {
                try? await tx.exec("ROLLBACK")
                throw error
            }
        }
    }

    static func isRetryable(_ error: PSQLError) -> Bool {
        guard let state = error.serverInfo?[.sqlState] else { return false }
        return state == "40P01" || state == "40001" || state == "23505"
    }
}

/// A connection inside a transaction.
struct PGTx: Sendable {
    let conn: PostgresConnection
    let logger: Logger

    func exec(_ query: PostgresQuery) async throws {
        try await conn.query(query, logger: logger)
    }

    func rows(_ query: PostgresQuery) async throws -> [PostgresRow] {
        try await conn.query(query, logger: logger).collect()
    }

    /// Rows changed by an UPDATE/DELETE with `RETURNING 1`.
    func count(_ query: PostgresQuery) async throws -> Int {
        try await rows(query).count
    }
}

extension PostgresDeviceStore {
    /// Throws unless migrated (readiness must not wait).
    static func checkMigrated(_ ready: OneShot<Void>) throws {
        guard let result = ready.current else { throw StorageError.corrupt("the PostgreSQL schema is not migrated yet") }
        try result.get()
    }
}
