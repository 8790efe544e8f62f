import Foundation
import MobileEngage
import Testing
@testable import Workflow

/// The fault paths of the invariants (I1, I4) as pure transitions: every contact-token call refreshes and
/// re-links on a 401, removals included; a failed device gets a fresh budget; an unanswered PUT is not forgotten.
@Suite("Invariant paths: refresh on every removal, fresh budgets, uncertain tokens")
struct InvariantPathTests {
    @Test("a release meeting a 401 refreshes the contact token and replays the DELETE")
    func releaseRefreshes() {
        var h = registeredDevice()
        h.enqueue(.release(tokenHash: token(1).tokenHash))
        h.run { call, i in i == 0 ? .status(401) : .ok(call) }
        #expect(h.endpoints == ["push_token_delete", "contact_token", "push_token_delete"])
        #expect(h.state.pushTokenSent == nil)
        #expect(h.queue.isEmpty)
    }

    @Test("a release whose refresh is refused re-links the contact it knows, then deletes")
    func releaseRelinks() {
        var h = registeredDevice()
        h.enqueue(.release(tokenHash: token(1).tokenHash))
        h.run { call, i in i <= 1 ? .status(401) : .ok(call) }
        #expect(h.endpoints == ["push_token_delete", "contact_token", "contact_anonymous", "push_token_delete"])
        #expect(h.state.pushTokenSent == nil)
        #expect(h.state.lastError == nil)
    }

    @Test("a client-id change meeting a 401 on the old client's DELETE refreshes before the new client starts")
    func clientIdChangeRefreshes() {
        var h = registeredDevice()
        h.enqueue(start(clientId: "client-2"))
        h.run { call, i in i == 0 ? .status(401) : .ok(call) }
        #expect(Array(h.endpoints.prefix(3)) == ["push_token_delete", "contact_token", "push_token_delete"])
        #expect(h.contexts.prefix(3).allSatisfy { $0.clientId == "client-1" })
        #expect(h.state.clientId == "client-2")
        #expect(h.state.pushTokenSent == token(1))
    }

    @Test("a failed device's next intent starts its step with a fresh refresh budget and re-link")
    func failedDeviceGetsFreshBudget() {
        var h = registeredDevice()
        h.state.failed = true
        h.state.relinked = true
        h.state.refreshCycles = 3
        h.enqueue(.setToken(token(2)))
        h.run { call, i in i == 0 ? .status(401) : .ok(call) }
        #expect(h.endpoints == ["push_token_put", "contact_token", "push_token_put"])
        #expect(h.state.pushTokenSent == token(2))
        #expect(!h.state.failed)
    }

    @Test("an event skipped after a 401 past the re-link leaves the next step a full budget")
    func skippedEventResetsBudget() {
        var h = registeredDevice()
        h.enqueue(start(token: token(2)))
        // The event: 401 and three refreshes, a fourth 401 and the re-link, a 401 after it (skipped). Then the
        // PUT: 401, a refresh, success.
        let script: [Int] = [401, 200, 401, 200, 401, 200, 401, 200, 401, 401]
        h.run { call, i in i < script.count && script[i] == 401 ? .status(401) : .ok(call) }
        #expect(h.endpoints == [
            "events", "contact_token", "events", "contact_token", "events", "contact_token", "events", "contact_anonymous", "events",
            "push_token_put", "contact_token", "push_token_put",
        ])
        #expect(h.state.pushTokenSent == token(2))
        #expect(!h.state.failed)
    }

    @Test("a 401 on a removal after a re-link and a transient failure is a new expiry: refresh again, never give up the token")
    func transientBetweenRestartsTheBudget() {
        var h = registeredDevice()
        h.enqueue(.release(tokenHash: token(1).tokenHash))
        // DELETE 401, refresh refused, re-link, DELETE 429, DELETE 401 (expired again), refresh, DELETE 204.
        let script: [Int] = [401, 401, 200, 429, 401, 200, 200]
        for _ in 0..<3 { h.run { call, i in i < script.count && script[i] != 200 ? .status(script[i]) : .ok(call) } }
        #expect(h.endpoints == ["push_token_delete", "contact_token", "contact_anonymous", "push_token_delete", "push_token_delete", "contact_token", "push_token_delete"])
        #expect(h.state.pushTokenSent == nil)
        #expect(h.queue.isEmpty)
    }

    @Test("a removal meeting a 401 right after its re-link backs off and tries again, instead of giving the token up")
    func removalNeverGivesUpOn401() {
        var h = registeredDevice()
        h.enqueue(.release(tokenHash: token(1).tokenHash))
        // DELETE 401, refresh refused, re-link, DELETE 401 (expired again at once): a retry with backoff.
        h.run { call, i in i == 0 || i == 1 || i == 3 ? .status(401) : .ok(call) }
        #expect(h.endpoints == ["push_token_delete", "contact_token", "contact_anonymous", "push_token_delete"])
        #expect(h.transitions.last?.retryAt != nil)
        #expect(h.state.pushTokenSent == token(1))
        #expect(!h.state.failed)
        h.run()
        #expect(h.endpoints.last == "push_token_delete")
        #expect(h.state.pushTokenSent == nil)
        #expect(h.queue.isEmpty)
    }

    @Test("releaseAll removes whatever ME holds and leaves the device wanting no token")
    func releaseAllRemovesOlderToken() {
        var h = registeredDevice()
        h.enqueue(.releaseAll(tokenHash: token(2).tokenHash))
        h.run()
        #expect(h.endpoints == ["push_token_delete"])
        #expect(h.state.pushTokenSent == nil)
        #expect(h.state.wantedToken == nil)
    }

    @Test("a PUT without an answer leaves its token uncertain: a release of it still sends the DELETE")
    func unansweredPutIsRemovedOnMove() {
        var h = registeredDevice()
        h.enqueue(.setToken(token(2)))
        h.run { call, _ in call.endpoint == "push_token_put" ? .network : .ok(call) }
        #expect(h.state.pushTokenUncertain == token(2))
        h.queue.removeAll()
        h.enqueue(.release(tokenHash: token(2).tokenHash))
        h.run()
        #expect(h.endpoints.last == "push_token_delete")
        #expect(h.state.pushTokenUncertain == nil)
    }

    @Test("beforeSending marks a PUT's token before it leaves, once; markingNextPut does it in the step before")
    func putTokenMarkedAhead() throws {
        let h = registeredDevice()
        let head = Intent(id: 9, payload: .setToken(token(3)), acceptedAt: Date())
        let marked = try #require(Planner.beforeSending(.setPushToken(token(3).pushToken), state: h.state, head: head))
        #expect(marked.pushTokenUncertain == token(3))
        #expect(Planner.beforeSending(.setPushToken(token(3).pushToken), state: marked, head: head) == nil)
        #expect(Planner.beforeSending(.removePushToken, state: h.state, head: head) == nil)
        let ahead = Planner(policy: AppPolicy(), sdkVersion: "test").markingNextPut(h.state, queue: [head], appCode: "EMS12-34567", moveBlocked: false, nowMs: 1)
        #expect(ahead.pushTokenUncertain == token(3))
    }

    @Test("Intake: a newer token request strips the token from queued starts; a move of the newest token releases all")
    func intakeEdits() {
        let queued = [
            Intent(id: 1, payload: start(token: token(1)), acceptedAt: Date()),
            Intent(id: 2, payload: .setToken(token(2)), acceptedAt: Date()),
            Intent(id: 3, payload: .removeToken, acceptedAt: Date()),
            Intent(id: 4, payload: .login(fieldId: 3, value: "v"), acceptedAt: Date()),
        ]
        let collapsed = Intake.collapse(queued: queued, state: nil)
        #expect(collapsed.dropIds == [2, 3])
        #expect(collapsed.rewrites == [QueueEdits.Rewrite(id: 1, payload: start(token: nil))])

        var state = DeviceState(clientId: "c", platform: "android")
        state.pushTokenSent = token(1)
        // A start whose token is at ME (its PUT done, the start not yet popped) keeps it: no needless removal.
        #expect(Intake.collapse(queued: queued, state: state).rewrites.isEmpty)
        let moveOld = Intake.release(tokenHash: token(1).tokenHash, state: state, queued: Array(queued.prefix(2)))
        #expect(moveOld.release == .release(tokenHash: token(1).tokenHash))
        #expect(moveOld.edits.rewrites.map(\.id) == [1])
        let moveNewest = Intake.release(tokenHash: token(2).tokenHash, state: state, queued: Array(queued.prefix(2)))
        #expect(moveNewest.release == .releaseAll(tokenHash: token(2).tokenHash))
        #expect(moveNewest.edits.dropIds == [2])
        #expect(Intake.claimsKept(by: state) == [token(1).tokenHash])
    }

    @Test("Intake: a forget supersedes everything queued before it but the releases; the planner sends only the removal")
    func forgetSupersedes() {
        let queued = [
            Intent(id: 1, payload: start(token: token(1)), acceptedAt: Date()),
            Intent(id: 2, payload: .release(tokenHash: token(2).tokenHash), acceptedAt: Date()),
            Intent(id: 3, payload: .login(fieldId: 3, value: "v"), acceptedAt: Date()),
        ]
        #expect(Intake.edits(for: .forget, collapse: true, queued: queued, state: nil).dropIds == [1, 3])
        // Other writes keep to their own rules.
        #expect(Intake.edits(for: .logout, collapse: false, queued: queued, state: nil) == QueueEdits())
        #expect(Intake.edits(for: .removeToken, collapse: true, queued: queued, state: nil) == Intake.collapse(queued: queued, state: nil))

        let planner = Planner(policy: AppPolicy(), sdkVersion: "test")
        let forget = [Intent(id: 4, payload: .forget, acceptedAt: Date())]
        // Never registered at ME (no client state): nothing to send, the device goes at once.
        let fresh = DeviceState(clientId: "c", platform: "android")
        #expect(planner.plan(state: fresh, queue: forget, appCode: "EMS12-34567", moveBlocked: false, nowMs: 1) == .forget)
        // A token at ME goes first.
        var held = fresh
        held.clientState = "cs"
        held.contactToken = "ct"
        held.pushTokenSent = token(1)
        guard case .send(.removePushToken, _) = planner.plan(state: held, queue: forget, appCode: "EMS12-34567", moveBlocked: false, nowMs: 1) else {
            Issue.record("a forget with a token at ME sends its removal first")
            return
        }
    }

    @Test("Intake: a token moving away from the failed request that asked for it leaves the device no token")
    func releaseOfFailedHead() {
        // ME holds T1; the backend then asked for T2, whose PUT ME refused for good (the device failed, T2's
        // request still at the head for its retry). T2 moves to another device: the backend's last word for this
        // one is T2, now gone, so it must end with no token, not fall back to T1.
        var state = DeviceState(clientId: "c", platform: "android")
        state.pushTokenSent = token(1)
        state.failed = true
        let queued = [Intent(id: 7, payload: .setToken(token(2)), acceptedAt: Date())]
        let move = Intake.release(tokenHash: token(2).tokenHash, state: state, queued: queued)
        #expect(move.release == .releaseAll(tokenHash: token(2).tokenHash))
        #expect(move.edits.dropIds == [7])
        // A newer request behind the failed head still wins: only T2 goes.
        let newer = queued + [Intent(id: 8, payload: .setToken(token(3)), acceptedAt: Date())]
        #expect(Intake.release(tokenHash: token(2).tokenHash, state: state, queued: newer).release == .release(tokenHash: token(2).tokenHash))
    }
}
