import Foundation
import Storage
import Testing
import Workflow

extension Conformance {
    /// Leases: the heartbeat renews only the owner's, past the claim's lease; a new run of an instance gives back its
    /// earlier run's leases, and only those.
    static func leaseRenewal(_ h: StoreHarness) async throws {
        let store = try await h.open()
        let t0 = Date()
        let (a, b, c) = (Fixture.key("a"), Fixture.key("b"), Fixture.key("c"))
        for k in [a, b, c] { try await store.put(Fixture.start(Fixture.token(k.deviceId)), k, now: t0) }
        let first = try await store.claimDue(now: t0, limit: 2, owner: "i1/run1", lease: .seconds(10))
        #expect(first.count == 2)
        let other = try await store.claimDue(now: t0, limit: 5, owner: "i2/x", lease: .seconds(10))
        #expect(Set(first + other) == [a, b, c])
        let (renewedKey, idle) = (first[0], first[1])
        // Only the owner's lease is renewed; another's key in the list is left out.
        let kept = try await store.renewLeases([renewedKey, other[0]], owner: "i1/run1", lease: .seconds(10), now: t0.addingTimeInterval(8))
        #expect(kept == [renewedKey])
        // Past the claims' leases: the renewed device is still run 1's, the others are free.
        let later = try await store.claimDue(now: t0.addingTimeInterval(15), limit: 5, owner: "i3/y", lease: .seconds(10))
        #expect(Set(later) == [idle, other[0]])
        // A new run of instance i1 gives back run 1's lease at once; not i3's, and "i" is not a prefix of "i1".
        #expect(try await store.releaseLeases(ofInstance: "i", except: "i/run9") == 0)
        #expect(try await store.releaseLeases(ofInstance: "i3", except: "i3/y") == 0)
        #expect(try await store.releaseLeases(ofInstance: "i1", except: "i1/run2") == 1)
        #expect(try await store.claimDue(now: t0.addingTimeInterval(16), limit: 5, owner: "i4/z", lease: .seconds(10)) == [renewedKey])
        // Renewing a lease that is gone keeps nothing.
        #expect(try await store.renewLeases([renewedKey], owner: "i1/run1", lease: .seconds(10), now: t0.addingTimeInterval(16)).isEmpty)
    }
}

extension Conformance {
    /// A forget whose worker loaded writes sent after it: they start the device afresh (a start after a DELETE is not
    /// lost), backends hear `device.deleted` and the history goes; a release queued after it does not bring the device
    /// back, and claims of what it held go too.
    static func forgetBoundary(_ h: StoreHarness) async throws {
        let store = try await h.open()
        let now = Date()
        let routing = WebhookRouting(endpoints: [.init(id: "all", events: ["device.deleted", "device.registered"])], unregisterReason: nil)
        func forget(_ k: DeviceKey, after write: (() async throws -> Void)?) async throws {
            #expect(try await store.put(.forget, k, now: now).kind == "accepted")
            if let write { try await write() }
            #expect(try await store.claimDue(now: now, limit: 10, owner: "w", lease: .seconds(60)).contains(k))
            let work = try #require(try await store.loadWork(k))
            let head = try #require(work.queue.first { $0.payload == .forget })
            var update = WorkUpdate(state: work.state, headId: head.id, forget: true, next: .whenWoken, newestIntentIdSeen: head.id, owner: "w", releaseLease: true)
            update.notify = routing
            try await store.commit(k, update, now: now)
        }
        // a: a start after the DELETE, loaded with it: kept, on a fresh client.
        let a = Fixture.key("a")
        try await store.put(Fixture.start(Fixture.token("a1")), a, now: now)
        let oldClient = try #require(try await store.status(of: a)?.clientId)
        try await store.appendHistory([HistoryRecord(key: a, at: now, entry: .intent(name: "start", deduplicated: false, requestId: nil))], keepPerDevice: 100)
        #expect(try await store.history(of: a, limit: 50)?.contains { if case .intent = $0.entry { return true } else { return false } } == true)
        try await forget(a) { try await store.put(Fixture.start(Fixture.token("a2")), a, now: now) }
        let fresh = try #require(try await store.status(of: a))
        #expect(fresh.clientId != oldClient && fresh.pending == 1)
        #expect(try await store.loadWork(a)?.queue.map(\.payload.kind) == ["start"])
        #expect(try await store.history(of: a, limit: 50)?.contains { if case .intent = $0.entry { return true } else { return false } } == false)
        // b: only a release arrives after the DELETE (its old token moved to c): b is gone, c's token is not held up.
        let (b, c) = (Fixture.key("b"), Fixture.key("c"))
        try await store.put(Fixture.start(Fixture.token("b1")), b, now: now)
        try await forget(b) { try await store.put(.setToken(Fixture.token("b1")), c, now: now) }
        #expect(try await store.status(of: b) == nil)
        #expect(try await store.loadWork(c)?.moveBlocked == false)
        // Each forget told backends once.
        let messages = try await store.claimWebhooks(endpoint: "all", now: now.addingTimeInterval(1), limit: 10, owner: "x", lease: .seconds(60))
        #expect(messages.filter { $0.event == "device.deleted" }.map(\.key).sorted { $0.deviceId < $1.deviceId } == [a, b])
    }
}

extension Conformance {
    /// Two instances started at once on a fresh PostgreSQL schema both migrate and work (`CREATE SCHEMA IF NOT EXISTS`
    /// races between them). On SQLite one instance owns the file, so there it opens twice in turn.
    static func concurrentMigrate(_ h: StoreHarness) async throws {
        let (one, two): (any DeviceStore, any DeviceStore)
        if h.backend == .postgres {
            async let first = h.open()
            async let second = h.open()
            (one, two) = try await (first, second)
        } else {
            (one, two) = (try await h.open(), try await h.open())
        }
        #expect(try await one.put(Fixture.start(Fixture.token("m")), Fixture.key("m")).kind == "accepted")
        #expect(try await two.snapshot(of: Fixture.key("m")) != nil)
    }
}
