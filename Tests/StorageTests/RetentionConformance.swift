import Foundation
import Storage
import Testing
import Workflow

extension Conformance {
    /// `lastSeenAt`, and the retention sweep's two store steps.
    static func retention(_ h: StoreHarness) async throws {
        let store = try await h.open()
        let t0 = Date(timeIntervalSince1970: 1_800_000_000)
        let (alive, stale, bare, other) = (Fixture.key("alive"), Fixture.key("stale"), Fixture.key("bare"), Fixture.key("x", app: Fixture.otherApp))
        let (ta, ts) = (Fixture.token("alive"), Fixture.token("stale"))

        // A stored write sets lastSeenAt; each device here ends registered with its token at ME.
        for (key, token) in [(alive, ta), (stale, ts), (other, Fixture.token("other"))] {
            #expect(try await store.put(Fixture.start(token), key, now: t0).kind == "accepted")
            try await registerHead(store, key, token: token, now: t0)
        }
        #expect(try await store.put(Fixture.start(nil), bare, now: t0).kind == "accepted")
        #expect(try await store.snapshot(of: stale)?.registration.lastSeenAt == t0)

        // A deduplicated write stores nothing; markSeen moves lastSeenAt (never back), and never makes a device.
        let t1 = t0.addingTimeInterval(100)
        #expect(try await store.put(.setToken(ta), alive, now: t1).kind == "deduplicated")
        #expect(try await store.snapshot(of: alive)?.registration.lastSeenAt == t0)
        try await store.markSeen([alive: t1, Fixture.key("nobody"): t1])
        try await store.markSeen([alive: t0])
        #expect(try await store.snapshot(of: alive)?.registration.lastSeenAt == t1)
        #expect(try await store.snapshot(of: Fixture.key("nobody")) == nil)

        // The sweep for "not seen since t0 + 50": stale and bare, not alive (seen at t1), not the other app's device.
        let t2 = t0.addingTimeInterval(200)
        let cutoff = t0.addingTimeInterval(50)
        let first = try await store.expireDevices(app: Fixture.app, seenBefore: cutoff, limit: 1, now: t2)
        #expect(first.devices.count == 1 && !first.busy)
        let second = try await store.expireDevices(app: Fixture.app, seenBefore: cutoff, limit: 10, now: t2)
        #expect(Set(first.devices + second.devices) == [stale, bare])
        // Each device once: the next round finds nothing.
        #expect(try await store.expireDevices(app: Fixture.app, seenBefore: cutoff, limit: 10, now: t2).devices.isEmpty)
        // The stale device's token goes as a dead token does, with the reason `expired`; the sweep did not see it.
        let work = try #require(try await store.loadWork(stale))
        #expect(work.queue.map(\.payload) == [.releaseAll(tokenHash: ts.tokenHash, cause: .expired)])
        let snap = try #require(try await store.snapshot(of: stale))
        #expect(snap.registration.tokenHash == nil && snap.registration.lastSeenAt == t0)
        // The device without a token has only its start queued; alive and the other app's device are untouched.
        #expect(try await store.loadWork(bare)?.queue.map(\.payload.kind) == ["start"])
        #expect(try await store.loadWork(alive)?.queue.isEmpty == true)
        #expect(try await store.loadWork(other)?.queue.isEmpty == true)
        // Its token is free: another device takes it without waiting for a move.
        #expect(try await store.put(.setToken(ts), Fixture.key("taker"), now: t2).kind == "accepted")

        // A backend write clears the mark: the device is swept again only once it is stale again.
        let t3 = t0.addingTimeInterval(300)
        #expect(try await store.put(.setToken(Fixture.token("stale2")), stale, now: t3).kind == "accepted")
        #expect(try await store.snapshot(of: stale)?.registration.lastSeenAt == t3)
        // A cutoff at t3 takes alive (seen at t1) and the device that took the expired token (t2), not stale; a later
        // one takes stale.
        let atT3 = try await store.expireDevices(app: Fixture.app, seenBefore: t3, limit: 10, now: t3)
        #expect(Set(atT3.devices) == [alive, Fixture.key("taker")])
        #expect(try await store.expireDevices(app: Fixture.app, seenBefore: t3.addingTimeInterval(1), limit: 10, now: t3).devices == [stale])

        // Forgetting: the devices not seen since t1 + 1 (alive, seen at t1, and bare), each once.
        let t4 = t0.addingTimeInterval(400)
        let forgotten = try await store.forgetDevices(
            app: Fixture.app, seenBefore: t1.addingTimeInterval(1), policy: Fixture.policy, limits: Fixture.limits, limit: 10, now: t4)
        #expect(Set(forgotten.devices) == [alive, bare])
        #expect(try await store.loadWork(alive)?.queue.map(\.payload) == [.releaseAll(tokenHash: ta.tokenHash, cause: .expired), .forget])
        #expect(try await store.snapshot(of: alive)?.registration.lastSeenAt == t1)
        #expect(try await store.forgetDevices(
            app: Fixture.app, seenBefore: t1.addingTimeInterval(1), policy: Fixture.policy, limits: Fixture.limits, limit: 10, now: t4).devices.isEmpty)
        // At the queue bound nothing is queued and the device stays to be swept later.
        let full = QueueLimits(maxQueuedIntents: 0, maxQueuedIntentsPerApp: 0)
        #expect(try await store.forgetDevices(app: Fixture.app, seenBefore: t4, policy: Fixture.policy, limits: full, limit: 10, now: t4).devices.isEmpty)
        #expect(try await store.forgetDevices(app: Fixture.app, seenBefore: t4, policy: Fixture.policy, limits: Fixture.limits, limit: 10, now: t4).devices.count == 2)
    }

    /// Works `key`'s queue as if ME took every call: the device ends registered with `token`.
    private static func registerHead(_ store: any DeviceStore, _ key: DeviceKey, token: TokenRef, now: Date) async throws {
        #expect(try await store.claimDue(now: now, limit: 10, owner: "w", lease: .seconds(60)).contains(key))
        let work = try #require(try await store.loadWork(key))
        var state = work.state
        state.pushTokenSent = token
        try await store.commit(key, WorkUpdate(
            state: state, headId: work.head?.id, popHead: true, next: .whenWoken, newestIntentIdSeen: work.newestIntentId, owner: "w",
            releaseLease: true), now: now)
        #expect(try await store.status(of: key)?.state == "registered")
    }
}

extension Conformance {
    /// Two instances sweeping one app at once, while a backend writes a token that moves between the swept devices:
    /// no device is queued twice, every device still stale is queued once in the end, and one token stays on one device.
    static func concurrentSweeps(_ h: StoreHarness) async throws {
        let one = try await h.open()
        let two = try await h.open()
        let t0 = Date()
        let devices = (0..<40).map { Fixture.key("s\($0)") }
        for k in devices { try await one.put(Fixture.start(Fixture.token(k.deviceId)), k, now: t0) }
        let cutoff = t0.addingTimeInterval(1)
        let moving = Fixture.token("s0")
        var swept: [[DeviceKey]] = []
        try await withThrowingTaskGroup(of: [DeviceKey].self) { group in
            for store in [one, two] {
                group.addTask {
                    var mine: [DeviceKey] = []
                    for _ in 0..<8 { mine += try await store.expireDevices(app: Fixture.app, seenBefore: cutoff, limit: 7, now: t0).devices }
                    return mine
                }
            }
            // s0's token moves to s1 meanwhile: s1 is seen after the cutoff (it may have been swept before that).
            group.addTask {
                _ = try await one.put(.setToken(moving), devices[1], now: t0.addingTimeInterval(2))
                return []
            }
            for try await batch in group { swept.append(batch) }
        }
        var all = swept.flatMap { $0 }
        #expect(all.count == Set(all).count, "a device was swept twice")
        all += try await one.expireDevices(app: Fixture.app, seenBefore: cutoff, limit: 100, now: t0).devices
        #expect(Set(all).count == all.count)
        #expect(Set(all).union([devices[1]]) == Set(devices))
        #expect(try await one.expireDevices(app: Fixture.app, seenBefore: cutoff, limit: 100, now: t0).devices.isEmpty)
        // s1's token: sent nowhere yet, so all that counts is that no two devices name it.
        var holders = 0
        for k in devices where try await one.status(of: k)?.tokenHash == moving.tokenHash { holders += 1 }
        #expect(holders <= 1)
    }
}
