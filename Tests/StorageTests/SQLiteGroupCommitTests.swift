import Foundation
import GRDB
import Synchronization
import Testing

@testable import Storage

/// Group commit runs many callers' writes in one transaction, each in a savepoint of its own: a caller whose
/// write throws sees its error and leaves nothing behind, and the others in the same group are kept.
@Suite("SQLite group commit")
struct SQLiteGroupCommitTests {
    struct Refused: Error, Equatable { let n: Int }

    @Test("a throwing write is undone alone; the writes grouped with it are kept and answered")
    func savepointPerWrite() async throws {
        let path = NSTemporaryDirectory() + "group-commit-\(UUID().uuidString).sqlite"
        defer { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) } }
        let pool = try DatabasePool(path: path)
        try await pool.write { db in try db.execute(sql: "CREATE TABLE t(n INTEGER PRIMARY KEY, note TEXT)") }
        let commits = SQLiteGroupCommit(pool: pool, maxGroup: 1000)
        let running = Atomic<Bool>(false)

        // A first write holds the writer while 300 more queue up behind it, so they run grouped. Every third of
        // them inserts its row, updates it, and then throws.
        let gate = Task { try await commits.write { _ in running.store(true, ordering: .releasing); Thread.sleep(forTimeInterval: 0.3) } }
        while !running.load(ordering: .acquiring) { try await Task.sleep(for: .milliseconds(1)) }
        let outcomes = try await withThrowingTaskGroup(of: (Int, Result<Int, Refused>).self) { group in
            for n in 0..<300 {
                group.addTask {
                    do {
                        let value = try await commits.write { db -> Int in
                            try db.execute(sql: "INSERT INTO t(n, note) VALUES (?, 'new')", arguments: [n])
                            try db.execute(sql: "UPDATE t SET note = 'kept' WHERE n = ?", arguments: [n])
                            if n % 3 == 0 { throw Refused(n: n) }
                            return n * 2
                        }
                        return (n, .success(value))
                    } catch let refused as Refused {
                        return (n, .failure(refused))
                    }
                }
            }
            var all: [Int: Result<Int, Refused>] = [:]
            for try await (n, outcome) in group { all[n] = outcome }
            return all
        }
        try await gate.value

        for n in 0..<300 {
            #expect(outcomes[n] == (n % 3 == 0 ? .failure(Refused(n: n)) : .success(n * 2)))
        }
        let rows = try await pool.read { db in try Row.fetchAll(db, sql: "SELECT n, note FROM t ORDER BY n") }
        #expect(rows.map { $0["n"] as Int } == (0..<300).filter { $0 % 3 != 0 })
        #expect(rows.allSatisfy { ($0["note"] as String) == "kept" })
        // Every savepoint was released and the group committed: the writer connection is outside any transaction.
        let open = try await pool.writeWithoutTransaction { db in db.isInsideTransaction }
        #expect(!open)
    }
}

