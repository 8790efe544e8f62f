import Foundation
import GRDB
import PostgresNIO
@testable import Storage
import Testing
import Workflow

extension Conformance {
    /// The contact key of each device: set by an identified login or a start naming a contact, moved by a later login,
    /// cleared by a logout, an OpenID login or a forget; found by exact field id, value and app; given once to devices
    /// stored before the column existed, from their state and queue.
    static func contacts(_ h: StoreHarness) async throws {
        let store = try await h.open()
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        let ann = "ann@example.com"
        @Sendable func found(_ s: any DeviceStore, _ value: String = ann, fieldId: Int = 3, app: String = Fixture.app) async throws -> [String] {
            try await s.devices(ofContact: fieldId, value: value, app: app, limit: 10).map(\.registration.key.deviceId)
        }
        func put(_ write: DeviceWrite, _ id: String, app: String = Fixture.app) async throws {
            let kind = try await store.put(write, Fixture.key(id, app: app), now: now).kind
            #expect(kind == "accepted", "\(id): \(kind)")
        }
        for id in ["a", "c", "d", "e", "f", "g", "r"] { try await put(Fixture.start(Fixture.token(id)), id) }
        try await put(Fixture.start(Fixture.token("b"), contact: .identified(fieldId: 3, value: ann)), "b")
        try await put(.login(fieldId: 3, value: ann), "a")
        try await put(.login(fieldId: 3, value: "bob@example.com"), "c")
        try await put(.login(fieldId: 9, value: ann), "d")
        try await put(.login(fieldId: 3, value: ann), "e")
        try await put(.logout, "e")
        try await put(.login(fieldId: 3, value: ann), "f")
        try await put(.openIdLogin(fieldId: 3, token: "header.payload.signature"), "f")
        try await put(.login(fieldId: 3, value: ann), "g")
        try await put(.forget, "g")
        try await put(Fixture.start(Fixture.token("x")), "x", app: Fixture.otherApp)
        try await put(.login(fieldId: 3, value: ann), "x", app: Fixture.otherApp)

        #expect(try await found(store) == ["a", "b"])
        #expect(try await found(store, fieldId: 9) == ["d"])
        #expect(try await found(store, "bob@example.com") == ["c"])
        #expect(try await found(store, "Ann@example.com").isEmpty, "the value is matched exactly")
        #expect(try await found(store, app: Fixture.otherApp) == ["x"])
        #expect(try await store.devices(ofContact: 3, value: ann, app: Fixture.app, limit: 1).map(\.registration.key.deviceId) == ["a"])
        // A login as someone else moves the device to that contact.
        try await put(.login(fieldId: 3, value: "carl@example.com"), "b")
        #expect(try await found(store) == ["a"])
        #expect(try await found(store, "carl@example.com") == ["b"])

        // A contact's logout or erase is stored only while the device is still that contact's, under the write's locks.
        let policy = Fixture.policy, limits = Fixture.limits
        #expect(try await store.accept(.logout, for: Fixture.key("b"), ifContact: 3, value: ann, policy: policy, limits: limits, now: now).kind == "unknownDevice")
        #expect(try await store.loadWork(Fixture.key("b"))?.queue.last?.payload == .login(fieldId: 3, value: "carl@example.com"))
        #expect(try await store.accept(.forget, for: Fixture.key("nobody"), ifContact: 3, value: ann, policy: policy, limits: limits, now: now).kind == "unknownDevice")
        #expect(try await store.snapshot(of: Fixture.key("nobody")) == nil)
        #expect(try await store.accept(.logout, for: Fixture.key("c"), ifContact: 3, value: "bob@example.com", policy: policy, limits: limits, now: now).kind == "accepted")
        #expect(try await found(store, "bob@example.com").isEmpty)

        // Device r's login is worked (the engine's state holds the contact, the queue is empty).
        try await put(.login(fieldId: 3, value: ann), "r")
        #expect(try await store.claimDue(now: now, limit: 100, owner: "w", lease: .seconds(60)).contains(Fixture.key("r")))
        let work = try #require(try await store.loadWork(Fixture.key("r")))
        var state = work.state
        state.wantedContact = .identified(fieldId: 3, value: ann)
        try await store.commit(Fixture.key("r"), WorkUpdate(
            state: state, headId: nil, next: .whenWoken, newestIntentIdSeen: work.newestIntentId, owner: "w", releaseLease: true), now: now)
        for intent in work.queue {
            let w = try #require(try await store.loadWork(Fixture.key("r")))
            try await store.commit(Fixture.key("r"), WorkUpdate(
                state: w.state, headId: intent.id, popHead: true, next: .whenWoken, newestIntentIdSeen: w.newestIntentId), now: now)
        }
        #expect(try await store.loadWork(Fixture.key("r"))?.queue.isEmpty == true)
        #expect(try await found(store) == ["a", "r"])

        // Devices stored before the column: no key and no mark. The next open gives each its key from the engine's
        // state (r) and the queue (a, b, c, ...), once.
        try await h.execute(["UPDATE devices SET contact_key = NULL", "DELETE FROM meta WHERE name = 'contact-keys'"], on: store)
        #expect(try await found(store).isEmpty)
        let reopened = try await h.open()
        #expect(try await found(reopened) == ["a", "r"])
        #expect(try await found(reopened, "carl@example.com") == ["b"])
        #expect(try await found(reopened, "bob@example.com").isEmpty, "c's queued logout is newer than its login")
        #expect(try await found(reopened, fieldId: 9) == ["d"])
        #expect(try await found(reopened, app: Fixture.otherApp) == ["x"])
        // Marked done: a key cleared now stays cleared at the next open.
        try await h.execute(["UPDATE devices SET contact_key = NULL WHERE device_id = 'a'"], on: store)
        #expect(try await found(try await h.open()) == ["r"])
    }
}

extension StoreHarness {
    /// Runs raw SQL statements in one transaction of `store` (to make a location look as an older version left it).
    func execute(_ statements: [String], on store: any DeviceStore) async throws {
        switch store {
        case let sqlite as SQLiteDeviceStore:
            try await sqlite.writes.write { db in
                for sql in statements { try db.execute(sql: sql) }
            }
        case let postgres as PostgresDeviceStore:
            try await postgres.transaction { tx in
                for sql in statements { try await tx.exec(PostgresQuery(unsafeSQL: sql)) }
            }
        default:
            Issue.record("no raw SQL for \(type(of: store))")
        }
    }
}
