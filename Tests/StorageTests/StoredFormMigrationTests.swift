import Foundation
import GRDB
import Testing
import Workflow
@testable import Storage

/// Databases written before the binary stored form hold the engine's state and intent payloads as sealed JSON.
/// They must read the same, and turn binary when next written.
@Suite("Stored form: rows written as JSON by earlier versions")
struct StoredFormMigrationTests {
    @Test("release intents written as JSON before releases had a cause read as moves; a cause written since reads back")
    func legacyReleases() throws {
        // The literal JSON the earlier synthesised encoding wrote for the two release payloads.
        #expect(try Codec.decode(IntentPayload.self, Data(#"{"release":{"tokenHash":"h1"}}"#.utf8)) == .release(tokenHash: "h1", cause: .moved))
        #expect(try Codec.decode(IntentPayload.self, Data(#"{"releaseAll":{"tokenHash":"h2"}}"#.utf8)) == .releaseAll(tokenHash: "h2", cause: .moved))
        #expect(try Codec.decode(IntentPayload.self, Data(#"{"logout":{}}"#.utf8)) == .logout)
        for payload: IntentPayload in [.release(tokenHash: "h3", cause: .invalidated), .releaseAll(tokenHash: "h4", cause: .invalidated), .removeToken] {
            let json = try JSONEncoder().encode(payload)
            #expect(try Codec.decode(IntentPayload.self, json) == payload, "\(String(decoding: json, as: UTF8.self))")
        }
    }

    @Test("A SQLite file with JSON rows reads the same state, queue and status, and its next commit writes the binary form")
    func legacyRows() async throws {
        try await StoreHarness.withFresh(.sqlite, Self.legacyRows)
    }

    static func legacyRows(_ h: StoreHarness) async throws {
        let store = try #require(try await h.open() as? SQLiteDeviceStore)
        let key = Fixture.key("d1")
        try await store.put(Fixture.start(Fixture.token("a"), contact: .identified(fieldId: 3, value: "jane@example.com")), key)
        try await store.put(.events([CustomEvent(name: "e", timestamp: "2026-11-29T08:00:00.000Z", attributes: ["k": "v"])]), key)
        var state = try #require(try await store.loadWork(key)).state
        state.contactToken = "contact-token"
        state.clientState = "client-state"
        state.pushTokenSent = Fixture.token("a")
        // Fixed times: the old JSON form keeps a date as milliseconds in a double, which a `Date()` (sub-millisecond)
        // does not always survive exactly (the full suite failed on such a date once).
        state.steps = StepTimes(clientAt: Date(timeIntervalSince1970: 1_764_403_200.123), contactAt: nil, pushTokenAt: Date(timeIntervalSince1970: 1_764_403_260.25))
        try await store.commit(key, WorkUpdate(state: state, headId: nil, next: .whenWoken, newestIntentIdSeen: 0), now: Date())
        let before = try #require(try await store.loadWork(key))
        let statusBefore = try #require(try await store.status(of: key))

        // Rewrite every sealed value the way earlier versions stored it.
        let sealer = store.sealer
        try await store.pool.write { db in
            try db.execute(sql: "UPDATE devices SET data = ? WHERE device_id = 'd1'", arguments: [try sealer.seal(legacyJSON(before.state))])
            for intent in before.queue {
                try db.execute(sql: "UPDATE intents SET payload = ? WHERE id = ?", arguments: [try sealer.seal(legacyJSON(intent.payload)), intent.id])
            }
        }
        func firstByte(_ sql: String) async throws -> UInt8? {
            try await store.pool.read { db in try Data.fetchOne(db, sql: sql).flatMap { try? sealer.open($0).first } }
        }
        #expect(try await firstByte("SELECT data FROM devices WHERE device_id = 'd1'") == UInt8(ascii: "{"))

        let after = try #require(try await store.loadWork(key))
        #expect(after.state == before.state)
        #expect(after.queue == before.queue)
        #expect(try await store.status(of: key) == statusBefore)

        try await store.commit(key, WorkUpdate(state: after.state, headId: nil, next: .whenWoken, newestIntentIdSeen: 0), now: Date())
        #expect(try await firstByte("SELECT data FROM devices WHERE device_id = 'd1'") == StoredForm.version)
        #expect(try #require(try await store.loadWork(key)).state == before.state)
    }
}

/// The form rows had before `StoredForm` (what `Codec` wrote then).
private func legacyJSON<T: Encodable>(_ value: T) throws -> Data {
    let e = JSONEncoder()
    e.dateEncodingStrategy = .millisecondsSince1970
    e.outputFormatting = [.sortedKeys]
    return try e.encode(value)
}
