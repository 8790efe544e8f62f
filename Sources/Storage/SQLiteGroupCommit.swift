import Foundation
import GRDB
import Synchronization

/// Group commit for the SQLite store: write operations that arrive while the writer is busy are run
/// together in one transaction, each inside its own savepoint, and each caller is answered only once
/// that transaction has committed.
///
/// Each operation stays atomic (its savepoint is rolled back when it throws, and only its caller sees the
/// error), operations run one after another in arrival order, each sees what the ones before it wrote,
/// and none is answered before its changes are durable: the same guarantees as one transaction per
/// operation, with one commit (WAL append) for the whole group instead of one each.
final class SQLiteGroupCommit: Sendable {
    private struct Job: Sendable {
        /// Runs the operation in its savepoint; returns how to answer its caller once the group committed.
        let run: @Sendable (Database) -> @Sendable () -> Void
        /// Answers the caller with the error that undid the whole group.
        let fail: @Sendable (any Error) -> Void
    }

    private struct Queue {
        var jobs: [Job] = []
        var scheduled = false
    }

    private let pool: DatabasePool
    private let queue = Mutex(Queue())
    private let maxGroup: Int

    init(pool: DatabasePool, maxGroup: Int = 256) {
        self.pool = pool
        self.maxGroup = max(1, maxGroup)
    }

    func write<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            let job = Job(
                run: { db in
                    do {
                        let result = try Self.inSavepoint(db, body)
                        return { continuation.resume(returning: result) }
                    } catch {
                        return { continuation.resume(throwing: error) }
                    }
                },
                fail: { continuation.resume(throwing: $0) })
            let schedule = queue.withLock { q -> Bool in
                q.jobs.append(job)
                if q.scheduled { return false }
                q.scheduled = true
                return true
            }
            if schedule { scheduleGroup() }
        }
    }

    /// Runs `body` in a savepoint of the group's transaction, undone when `body` throws. GRDB's `inSavepoint`
    /// does the same, but compiles its SAVEPOINT and RELEASE statements anew each time: a few per cent of the
    /// writer's time. These come from the connection's statement cache.
    static func inSavepoint<T>(_ db: Database, _ body: (Database) throws -> T) throws -> T {
        try db.cachedStatement(sql: "SAVEPOINT job").execute()
        let value: T
        do {
            value = try body(db)
        } catch {
            // An error that ended the transaction itself left no savepoint to roll back to.
            if db.isInsideTransaction {
                try db.cachedStatement(sql: "ROLLBACK TO SAVEPOINT job").execute()
                try db.cachedStatement(sql: "RELEASE SAVEPOINT job").execute()
            }
            throw error
        }
        try db.cachedStatement(sql: "RELEASE SAVEPOINT job").execute()
        return value
    }

    private func scheduleGroup() {
        pool.asyncWriteWithoutTransaction { db in self.runGroup(db) }
    }

    /// One group, on the writer's queue. When more work arrived meanwhile, the next group is queued behind
    /// whatever else waits for the writer (migrations, maintenance), so that nothing is starved.
    private func runGroup(_ db: Database) {
        let jobs: [Job] = queue.withLock { q in
            let n = min(q.jobs.count, maxGroup)
            let group = Array(q.jobs.prefix(n))
            q.jobs.removeFirst(n)
            return group
        }
        if !jobs.isEmpty {
            var answers: [@Sendable () -> Void] = []
            answers.reserveCapacity(jobs.count)
            do {
                try db.inTransaction(.immediate) {
                    for job in jobs {
                        answers.append(job.run(db))
                        // An error that ended the transaction itself (I/O, disk full) undid the whole group.
                        if !db.isInsideTransaction { throw GroupAborted() }
                    }
                    return .commit
                }
                for answer in answers { answer() }
            } catch {
                let cause = error is GroupAborted ? DatabaseError(resultCode: .SQLITE_ABORT, message: "the transaction was aborted") : error
                for job in jobs { job.fail(cause) }
            }
        }
        let more = queue.withLock { q -> Bool in
            if q.jobs.isEmpty {
                q.scheduled = false
                return false
            }
            return true
        }
        if more { scheduleGroup() }
    }

    private struct GroupAborted: Error {}
}
