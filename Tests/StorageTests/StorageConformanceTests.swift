import Foundation
import Storage
import Testing
import Workflow

/// The storage conformance suite: every case runs unchanged against SQLite and PostgreSQL, through
/// `DeviceStore` only (no HTTP), so no behaviour may differ between the two.
@Suite("DeviceStore conformance")
struct StorageConformanceTests {
    @Test("SQLite", arguments: Conformance.names)
    func sqlite(_ name: String) async throws {
        try await Conformance.run(name, on: .sqlite)
    }

    @Test(
        "PostgreSQL",
        .enabled(
            if: postgresURL != nil,
            "PUSHBRIDGE_TEST_POSTGRES_URL is not set: the PostgreSQL conformance cases are SKIPPED (scripts/test.sh starts a throwaway server and sets it)"),
        arguments: Conformance.names)
    func postgres(_ name: String) async throws {
        try await Conformance.run(name, on: .postgres)
    }
}

enum Conformance {
    typealias Case = @Sendable (StoreHarness) async throws -> Void

    static let cases: [(String, Case)] = [
        ("accept creates devices", acceptCreates),
        ("dedup of same token, login, logout, removal", dedup),
        ("rotations collapse", collapse),
        ("token move: release first, blocked until it pops, waiters woken", tokenMove),
        ("token move: the claim on a token at ME outlives a rotation; queued starts lose the moved token", moveKeepsClaimOfSentToken),
        ("invalidate: the holder releases a sent or queued token, no one takes it, a later PUT registers it", invalidate),
        ("queue bounds, global and per app", queueBounds),
        ("claimDue: due and unleased only, leases respected", claimDue),
        ("claimDue: the devices held by this instance's workers are skipped, the limit is kept", claimDueSkipsHeld),
        ("releaseLeases: an owner's leases go back, all but the ones in hand", releaseLeases),
        ("commit: pop, progress, backoff kept", commitPopProgressBackoff),
        ("commit gives the lease back in the same write when asked", commitReleasesLease),
        ("commit: whenWoken with and without newer intents", commitWhenWoken),
        ("load: a queue longer than the loaded window still names its newest intent", newestBeyondWindow),
        ("forget without later intents", forgetPlain),
        ("forget with later intents", forgetWithLater),
        ("list paging never loses or repeats", listPaging),
        ("overview counts", overview),
        ("wrong encryption key fails at migrate", wrongKey),
        ("fenced commit after a lost lease changes nothing", leaseLost),
        ("two instances: accepts on one device serialise", concurrentDevice),
        ("two instances: one token never on two devices", concurrentToken),
        ("webhook outbox: written with the change, in order per device, one holder at a time, settled", webhookOutbox),
        ("two instances: concurrent webhook claims never hand one message to both", concurrentWebhookClaims),
        ("history: appended, state changes from commits, newest first, trimmed, gone with the device", history),
        ("idempotency keys: taken once, answered again, reused, freed, abandoned, expired, purged", idempotencyKeys),
        ("two instances: one idempotency key claimed at once is taken by one", concurrentIdempotencyClaims),
        ("retention: lastSeenAt from writes and marks; expiry and forgetting queued once per stale device", retention),
        ("two instances: concurrent retention sweeps queue each stale device once", concurrentSweeps),
        ("contacts: the keyed hash of each device's newest requested contact, and its backfill", contacts),
        ("leases: renewed for their owner only; a new run of an instance gives back the earlier run's", leaseRenewal),
        ("forget: later writes start afresh, a later release does not; device.deleted and the history either way", forgetBoundary),
        ("two instances migrate a fresh schema at once", concurrentMigrate),
    ]

    static var names: [String] { cases.map(\.0) }

    static func run(_ name: String, on backend: Backend) async throws {
        guard let body = cases.first(where: { $0.0 == name })?.1 else { Issue.record("no case \(name)"); return }
        try await StoreHarness.withFresh(backend, body)
    }

    // MARK: Webhook outbox

    static func webhookOutbox(_ h: StoreHarness) async throws {
        let store = try await h.open()
        let (a, b) = (Fixture.key("a"), Fixture.key("b"))
        let now = Date()
        let routing = WebhookRouting(
            endpoints: [.init(id: "all", events: ["device.registered", "device.unregistered", "device.failed", "device.deleted"]),
                        .init(id: "failures", events: ["device.failed"])],
            unregisterReason: "removed")
        // A turn that registers a device's token, with the routing the engine gives it.
        func register(_ key: DeviceKey, _ token: TokenRef) async throws {
            #expect(try await store.claimDue(now: now, limit: 10, owner: "w", lease: .seconds(60)).contains(key))
            let work = try #require(try await store.loadWork(key))
            var state = work.state
            state.pushTokenSent = token
            var update = WorkUpdate(state: state, headId: work.head?.id, popHead: true, next: .whenWoken, newestIntentIdSeen: work.newestIntentId, owner: "w", releaseLease: true)
            update.notify = routing
            try await store.commit(key, update, now: now)
        }
        #expect(try await store.put(Fixture.start(Fixture.token("a1")), a, now: now).kind == "accepted")
        try await register(a, Fixture.token("a1"))
        // No routing (an app without endpoints): nothing is written.
        #expect(try await store.put(Fixture.start(Fixture.token("b1")), b, now: now).kind == "accepted")
        #expect(try await store.claimDue(now: now, limit: 10, owner: "w", lease: .seconds(60)) == [b])
        let workB = try #require(try await store.loadWork(b))
        var stateB = workB.state
        stateB.pushTokenSent = Fixture.token("b1")
        try await store.commit(b, WorkUpdate(state: stateB, headId: workB.head?.id, popHead: true, next: .whenWoken, newestIntentIdSeen: workB.newestIntentId, owner: "w", releaseLease: true), now: now)
        #expect(try await store.webhookBacklog().count == 1)
        // The same state again says nothing; a new token says registered again.
        #expect(try await store.put(.setToken(Fixture.token("a2")), a, now: now).kind == "accepted")
        try await register(a, Fixture.token("a2"))
        #expect(try await store.webhookBacklog().count == 2)

        // Claims: only the oldest of a device, with one holder at a time; the endpoint that wants failures has none.
        #expect(try await store.claimWebhooks(endpoint: "failures", now: now, limit: 10, owner: "x", lease: .seconds(30)).isEmpty)
        let first = try await store.claimWebhooks(endpoint: "all", now: now, limit: 10, owner: "x", lease: .seconds(30))
        #expect(first.map(\.event) == ["device.registered"])
        #expect(first.first?.key == a)
        #expect(first.first?.snapshot?.registration.tokenHash == Fixture.token("a1").tokenHash)
        #expect(first.first?.msgId.hasPrefix("msg_") == true)
        #expect(try await store.claimWebhooks(endpoint: "all", now: now, limit: 10, owner: "y", lease: .seconds(30)).isEmpty)
        // A failed attempt: tried again at its time, same id, one attempt more; meanwhile the next one waits.
        let msg = try #require(first.first)
        try await store.settleWebhook(id: msg.id, owner: "x", .retry(at: now.addingTimeInterval(5), status: 503))
        #expect(try await store.claimWebhooks(endpoint: "all", now: now, limit: 10, owner: "y", lease: .seconds(30)).isEmpty)
        let again = try await store.claimWebhooks(endpoint: "all", now: now.addingTimeInterval(6), limit: 10, owner: "y", lease: .seconds(30))
        #expect(again.map(\.msgId) == [msg.msgId])
        #expect(again.first?.attempts == 1)
        // Settled by someone who no longer holds it: nothing changes. By the holder: gone, and the next one's turn.
        try await store.settleWebhook(id: msg.id, owner: "x", .delivered)
        #expect(try await store.webhookBacklog().count == 2)
        try await store.settleWebhook(id: msg.id, owner: "y", .delivered)
        let next = try await store.claimWebhooks(endpoint: "all", now: now.addingTimeInterval(6), limit: 10, owner: "y", lease: .seconds(30))
        #expect(next.first?.snapshot?.registration.tokenHash == Fixture.token("a2").tokenHash)
        try await store.settleWebhook(id: try #require(next.first).id, owner: "y", .givenUp)

        // Entering failed tells both endpoints; a forget tells the one that wants it, with no device in the row.
        #expect(try await store.put(.setToken(Fixture.token("a3")), a, now: now).kind == "accepted")
        #expect(try await store.claimDue(now: now, limit: 10, owner: "w", lease: .seconds(60)) == [a])
        let work = try #require(try await store.loadWork(a))
        var failed = work.state
        failed.failed = true
        var update = WorkUpdate(state: failed, headId: work.head?.id, next: .whenWoken, newestIntentIdSeen: work.newestIntentId, owner: "w", releaseLease: true)
        update.notify = routing
        try await store.commit(a, update, now: now)
        #expect(try await store.claimWebhooks(endpoint: "failures", now: now, limit: 10, owner: "x", lease: .seconds(30)).map(\.event) == ["device.failed"])
        #expect(try await store.webhookBacklog().perEndpoint == ["all": 1, "failures": 1])
        // Endpoints no longer configured: their messages are dropped once older than the given time (younger ones
        // may be another instance's, during a rolling change of the configuration).
        #expect(try await store.dropWebhooks(keeping: ["all"], madeBefore: now) == 0)
        #expect(try await store.dropWebhooks(keeping: ["all"], madeBefore: now.addingTimeInterval(1)) == 1)
        #expect(try await store.dropWebhooks(keeping: [], madeBefore: now.addingTimeInterval(1)) == 1)
        #expect(try await store.webhookBacklog() == OutboxBacklog(count: 0, oldest: nil))
    }

    static func concurrentWebhookClaims(_ h: StoreHarness) async throws {
        let one = try await h.open()
        let two = try await h.open()
        let now = Date()
        let routing = WebhookRouting(endpoints: [.init(id: "e", events: ["device.registered"])], unregisterReason: nil)
        // 40 devices with one message each.
        for i in 0..<40 {
            let key = Fixture.key("w\(i)")
            #expect(try await one.put(Fixture.start(Fixture.token("w\(i)")), key, now: now).kind == "accepted")
            #expect(try await one.claimDue(now: now, limit: 10, owner: "w", lease: .seconds(60)) == [key])
            let work = try #require(try await one.loadWork(key))
            var state = work.state
            state.pushTokenSent = Fixture.token("w\(i)")
            var update = WorkUpdate(state: state, headId: work.head?.id, popHead: true, next: .whenWoken, newestIntentIdSeen: work.newestIntentId, owner: "w", releaseLease: true)
            update.notify = routing
            try await one.commit(key, update, now: now)
        }
        // Both instances claim at once, in small bites, until nothing is left.
        let claimed = try await withThrowingTaskGroup(of: [String].self) { group in
            for (n, store) in [one, two].enumerated() {
                group.addTask {
                    var mine: [String] = []
                    while true {
                        let batch = try await store.claimWebhooks(endpoint: "e", now: now, limit: 3, owner: "i\(n)", lease: .seconds(60))
                        if batch.isEmpty { return mine }
                        mine += batch.map(\.msgId)
                    }
                }
            }
            var all: [String] = []
            for try await part in group { all += part }
            return all
        }
        #expect(claimed.count == 40)
        #expect(Set(claimed).count == 40, "no message was handed to both")
    }

    // MARK: History

    static func history(_ h: StoreHarness) async throws {
        let store = try await h.open()
        let (a, b) = (Fixture.key("a"), Fixture.key("b"))
        let t0 = Date()
        #expect(try await store.history(of: a, limit: 10) == nil, "unknown device")
        #expect(try await store.put(Fixture.start(Fixture.token("a1")), a, now: t0).kind == "accepted")
        #expect(try await store.history(of: a, limit: 10) == [], "a new device has no change of state yet")
        // Entries are appended for devices that exist only (b does not).
        try await store.appendHistory([
            HistoryRecord(key: a, at: t0, entry: .intent(name: "start", deduplicated: false, requestId: "r1")),
            HistoryRecord(key: a, at: t0.addingTimeInterval(0.001), entry: .call(endpoint: "client", status: nil, attempt: 1, durationMs: 12)),
            HistoryRecord(key: b, at: t0, entry: .webhook(event: "device.registered", status: 503, attempt: 2)),
        ], keepPerDevice: 100)
        #expect(try await store.history(of: b, limit: 10) == nil)
        // A commit that changes the state column writes the change, listed above the call that came before it
        // even though the call was appended later (order by time, not by writing).
        let t1 = t0.addingTimeInterval(0.002)
        #expect(try await store.claimDue(now: t1, limit: 10, owner: "w", lease: .seconds(60)) == [a])
        let work = try #require(try await store.loadWork(a))
        var state = work.state
        state.pushTokenSent = Fixture.token("a1")
        try await store.commit(a, WorkUpdate(state: state, headId: work.head?.id, popHead: true, next: .whenWoken, newestIntentIdSeen: work.newestIntentId, owner: "w", releaseLease: true), now: t1)
        try await store.appendHistory([HistoryRecord(key: a, at: t0.addingTimeInterval(0.0015), entry: .call(endpoint: "push_token_put", status: 204, attempt: 1, durationMs: 3))], keepPerDevice: 100)
        var entries = try #require(try await store.history(of: a, limit: 10)).map(\.entry)
        #expect(entries == [
            .state(from: "pending", to: "registered"),
            .call(endpoint: "push_token_put", status: 204, attempt: 1, durationMs: 3),
            .call(endpoint: "client", status: nil, attempt: 1, durationMs: 12),
            .intent(name: "start", deduplicated: false, requestId: "r1"),
        ])
        // An API write that changes the state column writes that change too, in its own transaction.
        let t2 = t1.addingTimeInterval(0.001)
        #expect(try await store.put(.setToken(Fixture.token("a2")), a, now: t2).kind == "accepted")
        entries = try #require(try await store.history(of: a, limit: 10)).map(\.entry)
        #expect(entries.first == .state(from: "registered", to: "pending"))
        #expect(try await store.history(of: a, limit: 1)?.count == 1)
        // A commit whose clock is behind the last change (it read the time before it waited for the API's write,
        // or another instance's clock) still sorts after it: the state changes always chain.
        #expect(try await store.claimDue(now: t2, limit: 10, owner: "w", lease: .seconds(60)) == [a])
        let again = try #require(try await store.loadWork(a))
        try await store.commit(a, WorkUpdate(state: again.state, headId: again.head?.id, popHead: true, next: .whenWoken, newestIntentIdSeen: again.newestIntentId, owner: "w", releaseLease: true), now: t0)
        entries = try #require(try await store.history(of: a, limit: 10)).map(\.entry)
        #expect(entries.prefix(2) == [.state(from: "pending", to: "registered"), .state(from: "registered", to: "pending")])
        // Each device written to keeps its newest entries; entries past the age go.
        try await store.appendHistory([HistoryRecord(key: a, at: t2.addingTimeInterval(0.001), entry: .intent(name: "push-token", deduplicated: false, requestId: nil))], keepPerDevice: 2)
        entries = try #require(try await store.history(of: a, limit: 10)).map(\.entry)
        #expect(entries == [.intent(name: "push-token", deduplicated: false, requestId: nil), .state(from: "pending", to: "registered")])
        #expect(try await store.trimHistory(before: t2) == 0, "both are newer")
        #expect(try await store.trimHistory(before: t2.addingTimeInterval(1)) == 2)
        #expect(try await store.history(of: a, limit: 10) == [])
        // A forgotten device's history goes with it, and nothing recorded just before lands after.
        try await store.appendHistory([HistoryRecord(key: a, at: Date(), entry: .intent(name: "delete", deduplicated: false, requestId: nil))], keepPerDevice: 100)
        #expect(try await store.put(.forget, a).kind == "accepted")
        _ = try await store.claimDue(now: Date(), limit: 1, owner: "w", lease: .seconds(60))
        let w = try #require(try await store.loadWork(a))
        try await store.commit(a, WorkUpdate(state: w.state, headId: w.queue.last?.id, forget: true, next: .whenWoken, newestIntentIdSeen: w.newestIntentId, owner: "w"), now: Date())
        try await store.appendHistory([HistoryRecord(key: a, at: Date(), entry: .call(endpoint: "client", status: 200, attempt: 1, durationMs: 1))], keepPerDevice: 100)
        #expect(try await store.put(Fixture.start(Fixture.token("a3")), a).kind == "accepted")
        #expect(try await store.history(of: a, limit: 10) == [], "a device made again under the same id starts with no history")
    }

    static func idempotencyKeys(_ h: StoreHarness) async throws {
        let store = try await h.open()
        let window = IdempotencyWindow(keep: 86_400, abandonedAfter: 60)
        let t0 = Date()
        let request = Data("POST\n/v1/apps/A/devices/d/events\n{}".utf8)
        let other = Data("POST\n/v1/apps/A/devices/d/events\n{\"x\":1}".utf8)
        func claim(_ app: String = "A", key: String = "k", r: Data = request, at: Date = t0) async throws -> IdempotencyClaim {
            try await store.claimIdempotencyKey(app: app, key: key, request: r, now: at, window: window)
        }
        func token(_ c: IdempotencyClaim) -> String? {
            if case .proceed(let t) = c { return t }
            return nil
        }
        let first = try #require(token(try await claim()))
        #expect(try await claim() == .inProgress, "taken, not answered yet")
        #expect(try await claim(r: other) == .mismatch)
        #expect(token(try await claim("B")) != nil, "keys are per app")
        let answer = IdempotentAnswer(status: 202, contentType: "application/json", body: Array("{\"state\":\"pending\"}".utf8))
        // Neither another request nor another claim can settle the key; the claim that took it can.
        try await store.settleIdempotencyKey(app: "A", key: "k", claim: first, request: other, answer: answer)
        try await store.settleIdempotencyKey(app: "A", key: "k", claim: "someone else", request: request, answer: answer)
        #expect(try await claim() == .inProgress)
        try await store.settleIdempotencyKey(app: "A", key: "k", claim: first, request: request, answer: answer)
        #expect(try await claim() == .replay(answer))
        #expect(try await claim(at: t0.addingTimeInterval(3600)) == .replay(answer), "kept for the window")
        #expect(try await claim(r: other) == .mismatch)
        #expect(token(try await claim(r: other, at: t0.addingTimeInterval(86_401))) != nil, "expired: free for any request")
        // Freed (an answer a retry must get past), and abandoned (never settled) keys are free again.
        let f1 = try #require(token(try await claim(key: "f")))
        try await store.settleIdempotencyKey(app: "A", key: "f", claim: f1, request: request, answer: nil)
        let f2 = try #require(token(try await claim(key: "f")))
        #expect(try await claim(key: "f", at: t0.addingTimeInterval(30)) == .inProgress)
        let f3 = try #require(token(try await claim(key: "f", at: t0.addingTimeInterval(61))), "abandoned after a minute")
        // The request that outlived its claim cannot free or settle the claim that took over.
        try await store.settleIdempotencyKey(app: "A", key: "f", claim: f2, request: request, answer: nil)
        #expect(try await claim(key: "f", at: t0.addingTimeInterval(62)) == .inProgress)
        try await store.settleIdempotencyKey(app: "A", key: "f", claim: f3, request: request, answer: answer)
        #expect(try await claim(key: "f", at: t0.addingTimeInterval(63)) == .replay(answer))
        // Purged by age of first use.
        #expect(try await store.purgeIdempotencyKeys(before: t0.addingTimeInterval(1)) == 1, "B's key")
        #expect(token(try await claim("B")) != nil)
    }

    static func concurrentIdempotencyClaims(_ h: StoreHarness) async throws {
        let one = try await h.open()
        let two = try await h.open()
        let request = Data("PUT\n/v1/apps/A/devices/d/push-token\n{}".utf8)
        let now = Date()
        for round in 0..<10 {
            let claims = try await withThrowingTaskGroup(of: IdempotencyClaim.self) { group in
                for i in 0..<6 {
                    let store = i % 2 == 0 ? one : two
                    group.addTask { try await store.claimIdempotencyKey(app: "A", key: "k\(round)", request: request, now: now, window: IdempotencyWindow()) }
                }
                var all: [IdempotencyClaim] = []
                for try await c in group { all.append(c) }
                return all
            }
            let taken = claims.filter { if case .proceed = $0 { true } else { false } }
            #expect(taken.count == 1, "\(claims)")
            #expect(claims.filter { $0 == .inProgress }.count == 5)
        }
    }

    // MARK: API side

    static func acceptCreates(_ h: StoreHarness) async throws {
        let store = try await h.open()
        let t = Fixture.token("a")
        let r = try await store.put(Fixture.start(t), Fixture.key("d1"))
        guard case .accepted(let device) = r else { Issue.record("start: \(r.kind)"); return }
        let status = device.status
        #expect(status.state == "pending")
        #expect(status.pending == 1)
        #expect(status.tokenHash == t.tokenHash)
        let read = try #require(try await store.status(of: Fixture.key("d1")))
        #expect(read.clientId == status.clientId)
        #expect(read.provider == "fcm")
        // A token alone creates a device too; a login does not.
        #expect(try await store.put(.setToken(Fixture.token("b")), Fixture.key("d2")).kind == "accepted")
        #expect(try await store.put(.login(fieldId: 3, value: "x@example.com"), Fixture.key("d3")).kind == "unknownDevice")
        #expect(try await store.status(of: Fixture.key("d3")) == nil)
        let q = try await store.queuedIntents()
        #expect(q.total == 2)
        #expect(q.perApp[Fixture.app] == 2)
        #expect(try await store.nextDueAt() != nil)
        try await store.ping()
    }

    static func dedup(_ h: StoreHarness) async throws {
        let store = try await h.open()
        let k = Fixture.key("d1")
        let t = Fixture.token("a")
        #expect(try await store.put(Fixture.start(t), k).kind == "accepted")
        #expect(try await store.put(.setToken(t), k).kind == "deduplicated")
        #expect(try await store.put(.logout, k).kind == "deduplicated")  // anonymous already
        #expect(try await store.put(.login(fieldId: 3, value: "jane"), k).kind == "accepted")
        #expect(try await store.put(.login(fieldId: 3, value: "jane"), k).kind == "deduplicated")
        #expect(try await store.put(.logout, k).kind == "accepted")
        #expect(try await store.put(.logout, k).kind == "deduplicated")
        #expect(try await store.put(.removeToken, k).kind == "accepted")
        #expect(try await store.put(.removeToken, k).kind == "deduplicated")
        let s = try #require(try await store.status(of: k))
        #expect(s.tokenHash == nil)
        // start, login, logout, remove-token (the set-token collapsed into the start? no: the start stays).
        let work = try #require(try await store.loadWork(k))
        #expect(work.queue.map(\.payload.kind) == ["start", "login", "logout", "remove-token"])
        #expect(try await store.queuedIntents().total == 4)
    }

    static func collapse(_ h: StoreHarness) async throws {
        let store = try await h.open()
        let k = Fixture.key("d1")
        #expect(try await store.put(Fixture.start(), k).kind == "accepted")
        for name in ["r1", "r2", "r3"] {
            #expect(try await store.put(.setToken(Fixture.token(name)), k).kind == "accepted")
        }
        let work = try #require(try await store.loadWork(k))
        #expect(work.queue.map(\.payload.kind) == ["start", "set-token"])
        #expect(work.queue.last?.payload == .setToken(Fixture.token("r3")))
        let s = try #require(try await store.status(of: k))
        #expect(s.pending == 2)
        #expect(s.tokenHash == "hash-r3")
        #expect(try await store.queuedIntents().total == 2)
        // Back to the first token: still one token intent.
        #expect(try await store.put(.setToken(Fixture.token("r1")), k).kind == "accepted")
        #expect(try await store.loadWork(k)?.queue.count == 2)
    }

    static func moveKeepsClaimOfSentToken(_ h: StoreHarness) async throws {
        let store = try await h.open()
        let (a, b, c) = (Fixture.key("a"), Fixture.key("b"), Fixture.key("c"))
        let (t1, t2) = (Fixture.token("held"), Fixture.token("next"))
        #expect(try await store.put(Fixture.start(t1), a).kind == "accepted")
        // A's start is worked and T1 sent; then A rotates to T2, which is only queued.
        let now = Date()
        #expect(try await store.claimDue(now: now, limit: 10, owner: "w", lease: .seconds(60)) == [a])
        let workA = try #require(try await store.loadWork(a))
        var stateA = workA.state
        stateA.pushTokenSent = t1
        try await store.commit(a, WorkUpdate(state: stateA, headId: workA.head?.id, popHead: true, next: .whenWoken, newestIntentIdSeen: workA.newestIntentId, owner: "w", releaseLease: true), now: now)
        #expect(try await store.put(Fixture.start(t2), a, now: now).kind == "accepted")

        // B takes T1, which ME still holds on A: A keeps its claim until then, so B's PUT waits for A's release.
        // T2 stays A's newest token: the release removes T1 only.
        #expect(try await store.put(Fixture.start(t1), b, now: now).kind == "accepted")
        let afterMove = try #require(try await store.loadWork(a))
        #expect(afterMove.head?.payload == .release(tokenHash: t1.tokenHash))
        #expect(try #require(try await store.loadWork(b)).moveBlocked)

        // C takes T2, A's newest (only queued) token: A's queued start keeps its events but loses the token, and
        // A is left with no token at all (`releaseAll`).
        #expect(try await store.put(Fixture.start(t2), c, now: now).kind == "accepted")
        let final = try #require(try await store.loadWork(a))
        #expect(final.queue.map(\.payload.kind) == ["release", "release", "start"])
        #expect(final.queue.contains { $0.payload == .releaseAll(tokenHash: t2.tokenHash) })
        guard case .start(let start)? = final.queue.last?.payload else {
            Issue.record("A's start is gone")
            return
        }
        #expect(start.token == nil)
        #expect(try await store.status(of: a)?.tokenHash == nil)
        // C waits for A's release of T2 (the hash is A's release, whichever device queued it).
        #expect(try #require(try await store.loadWork(c)).moveBlocked)
    }

    static func invalidate(_ h: StoreHarness) async throws {
        let store = try await h.open()
        let (a, b) = (Fixture.key("a"), Fixture.key("b"))
        let (t1, t2) = (Fixture.token("sent"), Fixture.token("queued"))
        let now = Date()
        // Nobody holds it: nothing changes.
        #expect(try await store.invalidate(tokenHash: t1.tokenHash, app: a.appCode, now: now).isEmpty)
        #expect(try await store.put(Fixture.start(t1), a, now: now).kind == "accepted")
        // A's start is worked and T1 sent; then A rotates to T2, which is only queued.
        #expect(try await store.claimDue(now: now, limit: 10, owner: "w", lease: .seconds(60)) == [a])
        let work = try #require(try await store.loadWork(a))
        var state = work.state
        state.pushTokenSent = t1
        try await store.commit(a, WorkUpdate(state: state, headId: work.head?.id, popHead: true, next: .whenWoken, newestIntentIdSeen: work.newestIntentId, owner: "w", releaseLease: true), now: now)
        #expect(try await store.put(.setToken(t2), a, now: now).kind == "accepted")
        // Another app's report names another app's token: A keeps its own.
        #expect(try await store.invalidate(tokenHash: t2.tokenHash, app: "EMS98-76543", now: now).isEmpty)

        // T1 (at ME, no longer A's newest) reported dead: A releases it and keeps T2.
        let first = try await store.invalidate(tokenHash: t1.tokenHash, app: a.appCode, now: now)
        #expect(first.map(\.registration.key) == [a])
        var queue = try #require(try await store.loadWork(a)).queue
        #expect(queue.first?.payload == .release(tokenHash: t1.tokenHash, cause: .invalidated))
        #expect(queue.count == 2)
        #expect(try await store.status(of: a)?.tokenHash == t2.tokenHash)
        // Reported again: its claim is gone, nothing changes.
        #expect(try await store.invalidate(tokenHash: t1.tokenHash, app: a.appCode, now: now).isEmpty)

        // T2 (queued, A's newest) reported dead: its PUT goes, and A is left with no token.
        let second = try #require(try await store.invalidate(tokenHash: t2.tokenHash, app: a.appCode, now: now).first)
        #expect(second.registration.tokenHash == nil)
        queue = try #require(try await store.loadWork(a)).queue
        #expect(queue.map(\.payload) == [
            .release(tokenHash: t1.tokenHash, cause: .invalidated), .releaseAll(tokenHash: t2.tokenHash, cause: .invalidated),
        ])
        #expect(try await store.status(of: a)?.pending == 2)

        // A later PUT of the token by another device is a plain registration (it waits for A's release, as on a move).
        #expect(try await store.put(.setToken(t2), b, now: now).kind == "accepted")
        #expect(try #require(try await store.loadWork(b)).moveBlocked)
        #expect(try #require(try await store.loadWork(a)).queue.count == 2)
        #expect(try await store.status(of: b)?.tokenHash == t2.tokenHash)
    }

    static func claimDueSkipsHeld(_ h: StoreHarness) async throws {
        let store = try await h.open()
        let keys = (0..<4).map { Fixture.key("held-\($0)") }
        let now = Date()
        for k in keys { #expect(try await store.put(Fixture.start(nil), k, now: now).kind == "accepted") }
        let later = now.addingTimeInterval(1)
        // Two of the four are held: the other two are claimed, even with a limit of two.
        let claimed = try await store.claimDue(now: later, limit: 2, owner: "w", lease: .seconds(60), except: [keys[0], keys[2]])
        #expect(Set(claimed) == [keys[1], keys[3]])
        // The held ones were not leased: a claim without them in hand takes them.
        #expect(Set(try await store.claimDue(now: later, limit: 10, owner: "w2", lease: .seconds(60))) == [keys[0], keys[2]])
    }

    static func tokenMove(_ h: StoreHarness) async throws {
        let store = try await h.open()
        let a = Fixture.key("a")
        let b = Fixture.key("b")
        let t = Fixture.token("shared")
        #expect(try await store.put(Fixture.start(t), a).kind == "accepted")
        // A's start is worked and the token sent; A idles.
        let now = Date()
        #expect(try await store.claimDue(now: now, limit: 10, owner: "w", lease: .seconds(60)) == [a])
        var workA = try #require(try await store.loadWork(a))
        var stateA = workA.state
        stateA.pushTokenSent = t
        try await store.commit(a, WorkUpdate(state: stateA, headId: workA.head?.id, popHead: true, next: .now, newestIntentIdSeen: workA.newestIntentId, owner: "w"), now: now)
        try await store.releaseLease(a, owner: "w")
        #expect(try await store.status(of: a)?.pending == 0)

        // B takes the token: a release is queued at A, ahead of everything. (Accepted at `now`, so that a
        // slow machine cannot push B's due time past `t1`.)
        #expect(try await store.put(.login(fieldId: 3, value: "x"), a, now: now).kind == "accepted")
        #expect(try await store.put(Fixture.start(t), b, now: now).kind == "accepted")
        workA = try #require(try await store.loadWork(a))
        #expect(workA.queue.map(\.payload.kind) == ["release", "login"])
        // T was A's newest token: A is left with none (`releaseAll`).
        #expect(workA.head?.payload == .releaseAll(tokenHash: t.tokenHash))
        #expect(try await store.status(of: a)?.tokenHash == nil)
        #expect(try await store.status(of: b)?.tokenHash == t.tokenHash)
        var workB = try #require(try await store.loadWork(b))
        #expect(workB.moveBlocked)

        // B waits (not due) until the release pops.
        let t1 = now.addingTimeInterval(1)
        let claimed = try await store.claimDue(now: t1, limit: 10, owner: "w", lease: .seconds(60))
        #expect(Set(claimed) == [a, b])
        try await store.commit(b, WorkUpdate(state: workB.state, headId: workB.head?.id, next: .whenWoken, newestIntentIdSeen: workB.newestIntentId, owner: "w"), now: t1)
        try await store.releaseLease(b, owner: "w")
        #expect(try await store.claimDue(now: t1, limit: 10, owner: "w2", lease: .seconds(60)).isEmpty)

        // The release pops: B is woken and no longer blocked.
        stateA = workA.state
        stateA.pushTokenSent = nil
        try await store.commit(a, WorkUpdate(state: stateA, headId: workA.head?.id, popHead: true, next: .now, newestIntentIdSeen: workA.newestIntentId, owner: "w"), now: t1)
        try await store.releaseLease(a, owner: "w")
        workB = try #require(try await store.loadWork(b))
        #expect(!workB.moveBlocked)
        let woken = try await store.claimDue(now: t1.addingTimeInterval(0.01), limit: 10, owner: "w3", lease: .seconds(60))
        #expect(Set(woken) == [a, b])
    }

    static func queueBounds(_ h: StoreHarness) async throws {
        let store = try await h.open()
        let global = QueueLimits(maxQueuedIntents: 2, maxQueuedIntentsPerApp: 10)
        #expect(try await store.put(Fixture.start(), Fixture.key("d1"), limits: global).kind == "accepted")
        #expect(try await store.put(Fixture.start(), Fixture.key("d2"), limits: global).kind == "accepted")
        #expect(try await store.put(Fixture.start(), Fixture.key("d3"), limits: global).kind == "queueFull:global")
        #expect(try await store.status(of: Fixture.key("d3")) == nil)
        #expect(try await store.put(.login(fieldId: 3, value: "x"), Fixture.key("d1"), limits: global).kind == "queueFull:global")
        #expect(try await store.loadWork(Fixture.key("d1"))?.queue.count == 1)
        // A rotation that collapses adds nothing, so it passes at the bound.
        #expect(try await store.put(.setToken(Fixture.token("x")), Fixture.key("d1"), limits: global).kind == "queueFull:global")
        #expect(try await store.queuedIntents().total == 2)

        let perApp = QueueLimits(maxQueuedIntents: 100, maxQueuedIntentsPerApp: 2)
        #expect(try await store.put(Fixture.start(), Fixture.key("e1"), limits: perApp).kind == "queueFull:app")
        #expect(try await store.status(of: Fixture.key("e1")) == nil)
        #expect(try await store.put(Fixture.start(), Fixture.key("o1", app: Fixture.otherApp), limits: perApp).kind == "accepted")
        #expect(try await store.put(Fixture.start(), Fixture.key("o2", app: Fixture.otherApp), limits: perApp).kind == "accepted")
        #expect(try await store.put(Fixture.start(), Fixture.key("o3", app: Fixture.otherApp), limits: perApp).kind == "queueFull:app")
        let q = try await store.queuedIntents()
        #expect(q.total == 4)
        #expect(q.perApp == [Fixture.app: 2, Fixture.otherApp: 2])
    }

    static func releaseLeases(_ h: StoreHarness) async throws {
        let store = try await h.open()
        let now = Date()
        for i in 0..<4 { try await store.put(Fixture.start(), Fixture.key("d\(i)"), now: now) }
        // A claim whose answer the engine never got: A holds all four, works on one.
        let claimed = try await store.claimDue(now: now, limit: 10, owner: "A", lease: .seconds(120))
        #expect(claimed.count == 4)
        let inHand = claimed[0]
        #expect(try await store.releaseLeases(owner: "B", except: []) == 0)  // B holds none
        #expect(try await store.releaseLeases(owner: "A", except: [inHand]) == 3)
        // The three are claimable at once (not after 120 s); the one in hand stays A's.
        let again = try await store.claimDue(now: now, limit: 10, owner: "C", lease: .seconds(120))
        #expect(Set(again) == Set(claimed.dropFirst()))
        #expect(try await store.releaseLeases(owner: "A", except: [inHand]) == 0)
        try await store.releaseLease(inHand, owner: "A")
        #expect(try await store.claimDue(now: now, limit: 10, owner: "C", lease: .seconds(120)) == [inHand])
    }

    static func claimDue(_ h: StoreHarness) async throws {
        let store = try await h.open()
        let now = Date()
        for i in 0..<5 { try await store.put(Fixture.start(), Fixture.key("d\(i)"), now: now) }
        // Not due yet in the past.
        #expect(try await store.claimDue(now: now.addingTimeInterval(-10), limit: 10, owner: "x", lease: .seconds(30)).isEmpty)
        let first = try await store.claimDue(now: now, limit: 3, owner: "A", lease: .seconds(30))
        #expect(first.count == 3)
        let second = try await store.claimDue(now: now, limit: 10, owner: "B", lease: .seconds(30))
        #expect(second.count == 2)
        #expect(Set(first).isDisjoint(with: second))
        #expect(try await store.claimDue(now: now, limit: 10, owner: "C", lease: .seconds(30)).isEmpty)
        // Giving back: claimable again; a stranger cannot give back someone else's lease.
        try await store.releaseLease(first[0], owner: "B")
        #expect(try await store.claimDue(now: now, limit: 10, owner: "C", lease: .seconds(30)).isEmpty)
        try await store.releaseLease(first[0], owner: "A")
        #expect(try await store.claimDue(now: now, limit: 10, owner: "C", lease: .seconds(30)) == [first[0]])
        // Expired leases are taken over.
        let later = try await store.claimDue(now: now.addingTimeInterval(31), limit: 10, owner: "D", lease: .seconds(30))
        #expect(Set(later) == Set((0..<5).map { Fixture.key("d\($0)") }))
        // Idle devices are not due.
        let k = Fixture.key("d0")
        let w = try #require(try await store.loadWork(k))
        try await store.commit(k, WorkUpdate(state: w.state, headId: w.head?.id, popHead: true, next: .now, newestIntentIdSeen: w.newestIntentId, owner: "D"), now: now)
        try await store.releaseLease(k, owner: "D")
        #expect(try await store.claimDue(now: now.addingTimeInterval(100), limit: 10, owner: "E", lease: .seconds(30)).count == 4)
    }

    static func commitReleasesLease(_ h: StoreHarness) async throws {
        let store = try await h.open()
        let k = Fixture.key("d1")
        let now = Date()
        let w = try await store.queueStartAndLoginClaimed(k, token: Fixture.token("a"), owner: "A", lease: .seconds(60), now: now)
        // A commit that keeps going holds the lease: nobody else can claim the device, though it is due.
        try await store.commit(k, WorkUpdate(state: w.state, headId: w.head?.id, headProgress: 1, next: .now, newestIntentIdSeen: w.newestIntentId, owner: "A"), now: now)
        #expect(try await store.claimDue(now: now, limit: 1, owner: "B", lease: .seconds(60)).isEmpty)
        // The turn's last commit gives it back: still due (two intents pending), so B claims it at once,
        // and A's later commits are fenced off.
        try await store.commit(k, WorkUpdate(state: w.state, headId: w.head?.id, headProgress: 2, next: .now, newestIntentIdSeen: w.newestIntentId, owner: "A", releaseLease: true), now: now)
        #expect(try await store.claimDue(now: now, limit: 1, owner: "B", lease: .seconds(60)) == [k])
        await #expect(throws: StorageError.self) {
            try await store.commit(k, WorkUpdate(state: w.state, headId: w.head?.id, next: .now, newestIntentIdSeen: w.newestIntentId, owner: "A"), now: now)
        }
        let after = try #require(try await store.loadWork(k))
        #expect(after.head?.progress == 2)
        #expect(after.queue.count == 2)
    }

    static func commitPopProgressBackoff(_ h: StoreHarness) async throws {
        let store = try await h.open()
        let k = Fixture.key("d1")
        let now = Date()
        var w = try await store.queueStartAndLoginClaimed(k, token: Fixture.token("a"), owner: "w", lease: .seconds(60), now: now)
        #expect(w.queue.count == 2)
        let startId = try #require(w.head?.id)
        // Progress without a pop.
        try await store.commit(k, WorkUpdate(state: w.state, headId: startId, headProgress: 1, next: .now, newestIntentIdSeen: w.newestIntentId, owner: "w"), now: now)
        w = try #require(try await store.loadWork(k))
        #expect(w.head?.id == startId)
        #expect(w.head?.progress == 1)
        // Pop: the login is next and the device stays due.
        var state = w.state
        state.linkedContact = .anonymous
        try await store.commit(k, WorkUpdate(state: state, headId: startId, popHead: true, next: .now, newestIntentIdSeen: w.newestIntentId, owner: "w"), now: now)
        w = try #require(try await store.loadWork(k))
        #expect(w.queue.map(\.payload.kind) == ["login"])
        #expect(w.state.linkedContact == .anonymous)
        #expect(try await store.status(of: k)?.pending == 1)
        // Backoff: not due before it, and a new intent does not cut it short.
        let retryAt = now.addingTimeInterval(60)
        try await store.commit(k, WorkUpdate(state: w.state, headId: w.head?.id, next: .at(retryAt), newestIntentIdSeen: w.newestIntentId, owner: "w"), now: now)
        try await store.releaseLease(k, owner: "w")
        #expect(try await store.claimDue(now: now.addingTimeInterval(1), limit: 1, owner: "w", lease: .seconds(60)).isEmpty)
        try await store.put(.logout, k, now: now.addingTimeInterval(2))
        #expect(try await store.claimDue(now: now.addingTimeInterval(3), limit: 1, owner: "w", lease: .seconds(60)).isEmpty)
        let next = try #require(try await store.nextDueAt())
        #expect(abs(next.timeIntervalSince(retryAt)) < 0.01)
        #expect(try await store.claimDue(now: retryAt.addingTimeInterval(0.01), limit: 1, owner: "w", lease: .seconds(60)) == [k])
    }

    static func commitWhenWoken(_ h: StoreHarness) async throws {
        let store = try await h.open()
        let now = Date()
        let quiet = Fixture.key("quiet")
        let busy = Fixture.key("busy")
        for k in [quiet, busy] { try await store.put(Fixture.start(), k, now: now) }
        #expect(Set(try await store.claimDue(now: now, limit: 10, owner: "w", lease: .seconds(60))) == [quiet, busy])
        let wq = try #require(try await store.loadWork(quiet))
        let wb = try #require(try await store.loadWork(busy))
        // A login arrives for `busy` after its work was loaded.
        try await store.put(.login(fieldId: 3, value: "x"), busy, now: now)
        for (k, w) in [(quiet, wq), (busy, wb)] {
            var state = w.state
            state.waitingFor = "login"
            try await store.commit(k, WorkUpdate(state: state, headId: w.head?.id, next: .whenWoken, newestIntentIdSeen: w.newestIntentId, owner: "w"), now: now)
            try await store.releaseLease(k, owner: "w")
        }
        #expect(try await store.claimDue(now: now.addingTimeInterval(1), limit: 10, owner: "w", lease: .seconds(60)) == [busy])
        try await store.releaseLease(busy, owner: "w")
        #expect(try await store.status(of: quiet)?.waitingFor == "login")
        // The quiet one is woken by its next intent.
        try await store.put(.login(fieldId: 3, value: "y"), quiet, now: now.addingTimeInterval(2))
        #expect(Set(try await store.claimDue(now: now.addingTimeInterval(3), limit: 10, owner: "w", lease: .seconds(60))) == [quiet, busy])
    }

    static func newestBeyondWindow(_ h: StoreHarness) async throws {
        let store = try await h.open()
        let now = Date()
        let short = Fixture.key("short")
        let long = Fixture.key("long")
        for (k, events) in [(short, 3), (long, 80)] {
            try await store.put(Fixture.start(), k, now: now)
            for i in 0..<events {
                try await store.put(.events([CustomEvent(name: "e\(i)", timestamp: "2026-11-29T08:00:00.000Z", attributes: [:])]), k, now: now)
            }
        }
        #expect(Set(try await store.claimDue(now: now, limit: 10, owner: "w", lease: .seconds(60))) == [short, long])
        let ws = try #require(try await store.loadWork(short))
        let wl = try #require(try await store.loadWork(long))
        #expect(ws.queue.count == 4)
        #expect(ws.newestIntentId == ws.queue.map(\.id).max())
        // Only the first part of the long queue is loaded; the newest intent lies beyond it.
        #expect(wl.queue.count < 81)
        #expect(wl.newestIntentId > wl.queue.map(\.id).max() ?? 0)
        // Committed as seen, neither device counts anything as newly arrived: neither is due again.
        for (k, w) in [(short, ws), (long, wl)] {
            try await store.commit(k, WorkUpdate(state: w.state, headId: nil, next: .whenWoken, newestIntentIdSeen: w.newestIntentId, owner: "w", releaseLease: true), now: now)
        }
        #expect(try await store.claimDue(now: now.addingTimeInterval(1), limit: 10, owner: "w", lease: .seconds(60)).isEmpty)
    }

    static func forgetPlain(_ h: StoreHarness) async throws {
        let store = try await h.open()
        let k = Fixture.key("d1")
        let t = Fixture.token("a")
        try await store.put(Fixture.start(t), k)
        #expect(try await store.put(.forget, k).kind == "accepted")
        let w = try #require(try await store.loadWork(k))
        // The forget supersedes what was queued before it (`Intake.edits`): the start never goes to ME.
        #expect(w.queue.map(\.payload.kind) == ["forget"])
        #expect(try await store.queuedIntents().total == 1)
        _ = try await store.claimDue(now: Date(), limit: 1, owner: "w", lease: .seconds(60))
        try await store.commit(k, WorkUpdate(state: w.state, headId: w.queue.last?.id, forget: true, next: .whenWoken, newestIntentIdSeen: w.newestIntentId, owner: "w"), now: Date())
        #expect(try await store.status(of: k) == nil)
        #expect(try await store.loadWork(k) == nil)
        #expect(try await store.queuedIntents().total == 0)
        #expect(try await store.nextDueAt() == nil)
        // The token is free: another device takes it without a move.
        try await store.put(.setToken(t), Fixture.key("d2"))
        #expect(try await store.loadWork(Fixture.key("d2"))?.moveBlocked == false)
        #expect(try await store.loadWork(Fixture.key("d2"))?.queue.count == 1)
    }

    static func forgetWithLater(_ h: StoreHarness) async throws {
        let store = try await h.open()
        let k = Fixture.key("d1")
        try await store.put(Fixture.start(Fixture.token("a")), k)
        let clientId = try #require(try await store.status(of: k)?.clientId)
        try await store.put(.forget, k)
        _ = try await store.claimDue(now: Date(), limit: 1, owner: "w", lease: .seconds(60))
        let w = try #require(try await store.loadWork(k))
        // The backend sends a new token after the forget was loaded.
        try await store.put(.setToken(Fixture.token("b")), k)
        try await store.commit(k, WorkUpdate(state: w.state, headId: w.queue.last?.id, forget: true, next: .whenWoken, newestIntentIdSeen: w.newestIntentId, owner: "w"), now: Date())
        let s = try #require(try await store.status(of: k))
        #expect(s.clientId != clientId)
        #expect(s.pending == 1)
        let after = try #require(try await store.loadWork(k))
        #expect(after.queue.map(\.payload) == [.setToken(Fixture.token("b"))])
        #expect(try await store.queuedIntents().total == 1)
        try await store.releaseLease(k, owner: "w")
        #expect(try await store.claimDue(now: Date().addingTimeInterval(1), limit: 1, owner: "w", lease: .seconds(60)) == [k])
    }

    static func listPaging(_ h: StoreHarness) async throws {
        let store = try await h.open()
        var ids: [String] = []
        for i in 0..<23 {
            let id = ["Zed", "alpha", "Alpha", "beta", "ß", "9"][i % 6] + "-\(i)"
            ids.append(id)
            try await store.put(Fixture.start(), Fixture.key(id))
        }
        try await store.put(Fixture.start(), Fixture.key("other", app: Fixture.otherApp))
        var seen: [String] = []
        var cursor: String?
        var pages = 0
        repeat {
            let page = try await store.list(app: Fixture.app, state: nil, limit: 5, after: cursor)
            #expect(page.devices.count <= 5)
            seen += page.devices.map(\.deviceId)
            cursor = page.nextCursor
            pages += 1
        } while cursor != nil && pages < 20
        #expect(seen.count == 23)
        #expect(Set(seen) == Set(ids))
        #expect(seen == seen.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) })
        #expect(pages == 5)
        #expect(try await store.list(app: Fixture.app, state: "registered", limit: 5, after: nil).devices.isEmpty)
        #expect(try await store.list(app: Fixture.app, state: "pending", limit: 50, after: nil).devices.count == 23)
        let exact = try await store.list(app: Fixture.otherApp, state: nil, limit: 1, after: nil)
        #expect(exact.devices.map(\.deviceId) == ["other"])
        #expect(exact.nextCursor == nil)
    }

    static func overview(_ h: StoreHarness) async throws {
        let store = try await h.open()
        try await store.put(Fixture.start(Fixture.token("a")), Fixture.key("d1"))
        try await store.put(.setToken(Fixture.token("b", provider: "apns")), Fixture.key("d2"))
        try await store.put(Fixture.start(), Fixture.key("o1", app: Fixture.otherApp))
        let k = Fixture.key("d1")
        _ = try await store.claimDue(now: Date(), limit: 10, owner: "w", lease: .seconds(60))
        let w = try #require(try await store.loadWork(k))
        var state = w.state
        state.failed = true
        state.lastError = LastError(step: "client", status: 400, message: "bad request", attempts: 1, at: Date(), nextAttemptAt: nil)
        try await store.commit(k, WorkUpdate(state: state, headId: w.head?.id, next: .whenWoken, newestIntentIdSeen: w.newestIntentId, owner: "w"), now: Date())
        let all = try await store.overview(app: nil, failures: 5)
        #expect(all.apps[Fixture.app]?.total == 2)
        #expect(all.apps[Fixture.app]?.byState["failed"] == 1)
        #expect(all.apps[Fixture.app]?.byState["pending"] == 1)
        #expect(all.apps[Fixture.app]?.byProvider == ["fcm": 1, "apns": 1])
        #expect(all.apps[Fixture.app]?.queuedIntents == 2)
        #expect(all.apps[Fixture.otherApp]?.total == 1)
        #expect(all.recentFailures.map(\.deviceId) == ["d1"])
        #expect(all.recentFailures.first?.status == 400)
        #expect(all.oldestDueAt != nil)
        let one = try await store.overview(app: Fixture.otherApp, failures: 5)
        #expect(Array(one.apps.keys) == [Fixture.otherApp])
        #expect(one.recentFailures.isEmpty)
    }

    static func wrongKey(_ h: StoreHarness) async throws {
        let store = try await h.open()
        try await store.put(Fixture.start(Fixture.token("a")), Fixture.key("d1"))
        let other = Sealer(key: .init(size: .bits256))
        await #expect(throws: StorageError.self) { _ = try await h.open(key: other) }
        do {
            _ = try await h.open(key: other)
        } catch let error as StorageError {
            guard case .wrongKey = error else { Issue.record("expected wrongKey, got \(error)"); return }
            #expect(error.description.contains("storage.encryptionKey"))
        }
        // The right key still opens it.
        let again = try await h.open()
        #expect(try await again.status(of: Fixture.key("d1")) != nil)
    }

    static func leaseLost(_ h: StoreHarness) async throws {
        let store = try await h.open()
        let k = Fixture.key("d1")
        let now = Date()
        let w = try await store.queueStartAndLoginClaimed(k, owner: "A", lease: .seconds(5), now: now)
        // A stalls past its lease; B (a second instance) takes the device over.
        let other = try await h.open()
        #expect(try await other.claimDue(now: now.addingTimeInterval(6), limit: 5, owner: "B", lease: .seconds(5)) == [k])
        var state = w.state
        state.clientState = "from-A"
        await #expect(throws: StorageError.self) {
            try await store.commit(k, WorkUpdate(state: state, headId: w.head?.id, popHead: true, next: .now, newestIntentIdSeen: w.newestIntentId, owner: "A"), now: now)
        }
        let after = try #require(try await other.loadWork(k))
        #expect(after.queue.count == 2)
        #expect(after.state.clientState == nil)
        // A's give-back does not touch B's lease; B commits normally.
        try await store.releaseLease(k, owner: "A")
        #expect(try await store.claimDue(now: now.addingTimeInterval(7), limit: 5, owner: "C", lease: .seconds(5)).isEmpty)
        try await other.commit(k, WorkUpdate(state: after.state, headId: after.head?.id, popHead: true, next: .now, newestIntentIdSeen: after.newestIntentId, owner: "B"), now: now)
        #expect(try await other.loadWork(k)?.queue.count == 1)
    }

    static func concurrentDevice(_ h: StoreHarness) async throws {
        let one = try await h.open()
        let two = try await h.open()
        let k = Fixture.key("d1")
        // Both instances race to create the device and rotate its token.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<24 {
                let store = i % 2 == 0 ? one : two
                group.addTask {
                    if i < 4 { try await store.put(Fixture.start(), k) } else { try await store.put(.setToken(Fixture.token("r\(i)")), k) }
                }
            }
            try await group.waitForAll()
        }
        let w = try #require(try await one.loadWork(k))
        let kinds = w.queue.map(\.payload.kind)
        #expect(kinds.filter { $0 == "set-token" }.count == 1)
        #expect(kinds.filter { $0 == "start" }.count == 4)
        let s = try #require(try await two.status(of: k))
        #expect(s.pending == w.queue.count)
        guard case .setToken(let newest)? = w.queue.last(where: { $0.payload.kind == "set-token" })?.payload else { Issue.record("no token"); return }
        #expect(s.tokenHash == newest.tokenHash)
        #expect(try await one.queuedIntents().total == w.queue.count)
    }

    static func concurrentToken(_ h: StoreHarness) async throws {
        let one = try await h.open()
        let two = try await h.open()
        let t = Fixture.token("contested")
        let devices = (0..<10).map { Fixture.key("d\($0)") }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (i, k) in devices.enumerated() {
                let store = i % 2 == 0 ? one : two
                group.addTask { try await store.put(.setToken(t), k) }
            }
            try await group.waitForAll()
        }
        var holders: [DeviceKey] = []
        var releases = 0
        for k in devices {
            let s = try #require(try await one.status(of: k))
            if s.tokenHash == t.tokenHash { holders.append(k) }
            let w = try #require(try await one.loadWork(k))
            releases += w.queue.filter { $0.payload.kind == "release" }.count
            #expect(w.queue.filter { $0.payload.kind == "set-token" }.count <= 1)
        }
        #expect(holders.count == 1)
        // Every device but the last holder gave the token up with a release.
        #expect(releases == devices.count - 1)
        let holder = try #require(holders.first)
        #expect(try await one.loadWork(holder)?.queue.contains { $0.payload == .setToken(t) } == true)
    }
}
