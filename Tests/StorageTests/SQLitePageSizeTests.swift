import Crypto
import Foundation
import GRDB
import Testing
import Workflow
import Storage

/// New SQLite databases use 8 KB pages (a device row with its sealed state fits in the page); databases created with
/// 4 KB pages by earlier versions keep them and work as before.
@Suite("SQLite page size")
struct SQLitePageSizeTests {
    static func pageSize(_ path: String) throws -> Int {
        let queue = try DatabaseQueue(path: path)
        defer { try? queue.close() }
        return try queue.read { db in try Int.fetchOne(db, sql: "PRAGMA page_size") ?? 0 }
    }

    @Test("a new database has 8 KB pages; one made with 4 KB pages keeps them and stores and reads devices")
    func pageSizes() async throws {
        let directory = NSTemporaryDirectory() + "page-size-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let sealer = Sealer(key: SymmetricKey(size: .bits256))

        let fresh = directory + "/new.sqlite"
        let store = try SQLiteDeviceStore(path: fresh, sealer: sealer)
        try await store.migrate()
        try await store.close()
        #expect(try Self.pageSize(fresh) == 8192)

        // A file as earlier versions made it: 4 KB pages, WAL, before the store's schema.
        let old = directory + "/old.sqlite"
        let legacy = try DatabaseQueue(path: old)
        try await legacy.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA page_size = 4096")
            try db.execute(sql: "PRAGMA journal_mode = WAL")
            try db.execute(sql: "CREATE TABLE placeholder(x)")
            try db.execute(sql: "DROP TABLE placeholder")
        }
        try legacy.close()
        #expect(try Self.pageSize(old) == 4096)
        let reopened = try SQLiteDeviceStore(path: old, sealer: sealer)
        try await reopened.migrate()
        let key = Fixture.key("d1")
        let result = try await reopened.accept(
            .setToken(Fixture.token("a")), for: key, policy: AppPolicy(), limits: Fixture.limits, newClientId: "c1", now: Date())
        guard case .accepted = result else { Issue.record("not accepted: \(result)"); return }
        #expect(try await reopened.status(of: key)?.tokenHash == Fixture.token("a").tokenHash)
        try await reopened.close()
        #expect(try Self.pageSize(old) == 4096)
    }
}
