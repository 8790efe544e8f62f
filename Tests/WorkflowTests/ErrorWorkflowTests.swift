import Foundation
import MobileEngage
import Testing
@testable import Workflow

@Suite("ME errors: 401 refresh and re-link, retries, permanent failures")
struct ErrorWorkflowTests {
    @Test("401 on the push token refreshes the contact token and replays the PUT once")
    func refreshOn401() {
        var h = registeredDevice()
        h.enqueue(.setToken(token(2)))
        h.run { call, i in i == 0 ? .status(401) : .ok(call) }
        #expect(h.endpoints == ["push_token_put", "contact_token", "push_token_put"])
        #expect(h.state.pushTokenSent == token(2))
        #expect(h.state.refreshCycles == 0)
        #expect(h.queue.isEmpty)
    }

    @Test("after a refresh cycle on an event, the current token is sent again, as the SDKs do")
    func tokenResentAfterRefresh() {
        var h = registeredDevice()
        h.enqueue(start())
        h.run { call, i in i == 0 ? .status(401) : .ok(call) }
        #expect(h.endpoints == ["events", "contact_token", "events", "push_token_put"])
    }

    @Test("a fourth 401 re-links the contact once and replays; a 401 after that fails the step")
    func relinkAfterThreeRefreshes() {
        var h = registeredDevice()
        h.enqueue(.setToken(token(2)))
        h.run { call, _ in call.endpoint == "push_token_put" ? .status(401) : .ok(call) }
        #expect(h.endpoints == [
            "push_token_put", "contact_token", "push_token_put", "contact_token", "push_token_put", "contact_token",
            "push_token_put", "contact_anonymous", "push_token_put",
        ])
        #expect(h.state.failed)
        #expect(h.state.lastError?.step == "push-token")
        #expect(h.state.lastError?.status == 401)
        #expect(h.state.lastError?.nextAttemptAt == nil)
        #expect(DeviceStateName.of(h.state, pending: h.queue.count) == .failed)
    }

    @Test("a refresh answered non-2xx re-links the contact and replays, where the SDKs get stuck")
    func relinkWhenRefreshDies() {
        var h = registeredDevice()
        h.enqueue(.setToken(token(2)))
        var first = true
        h.run { call, _ in
            if call.endpoint == "push_token_put" && first { first = false; return .status(401) }
            if call.endpoint == "contact_token" { return .status(401) }
            return .ok(call)
        }
        #expect(h.endpoints == ["push_token_put", "contact_token", "contact_anonymous", "push_token_put"])
        #expect(h.state.pushTokenSent == token(2))
        #expect(!h.state.failed)
    }

    @Test("an identified device re-links its identified contact, not an anonymous one")
    func relinkIdentified() {
        var h = registeredDevice()
        h.enqueue(.login(fieldId: 3, value: "user@example.com"))
        h.run()
        h.calls.removeAll()
        h.enqueue(.setToken(token(2)))
        var first = true
        h.run { call, _ in
            if call.endpoint == "push_token_put" && first { first = false; return .status(401) }
            if call.endpoint == "contact_token" { return .status(400) }
            return .ok(call)
        }
        #expect(h.endpoints == ["push_token_put", "contact_token", "contact", "push_token_put"])
        guard case .linkContact(let f, let v) = h.calls[2] else { Issue.record("not an identified link"); return }
        #expect(f == 3 && v == "user@example.com")
    }

    @Test("401 on POST /client or on a contact link is permanent")
    func unauthorizedClientIsPermanent() {
        var h = Harness()
        h.enqueue(start())
        h.run { call, _ in call.endpoint == "client" ? .status(401) : .ok(call) }
        #expect(h.endpoints == ["client"])
        #expect(h.state.failed)
        var g = Harness()
        g.enqueue(start())
        g.run { call, _ in call.endpoint == "contact_anonymous" ? .status(401) : .ok(call) }
        #expect(g.endpoints == ["client", "contact_anonymous"])
        #expect(g.state.failed && g.state.lastError?.step == "contact")
    }

    @Test("408, 429, 5xx and network errors retry the same step with backoff; the steps behind wait", arguments: [408, 429, 500, 502, 503, 0])
    func transientRetries(code: Int) {
        var h = registeredDevice()
        h.enqueue(.setToken(token(2)))
        h.run { _, _ in code == 0 ? .network : .status(code) }
        #expect(h.endpoints == ["push_token_put"])
        #expect(!h.state.failed)
        #expect(h.transitions.last?.retryAt != nil)
        #expect(h.state.lastError?.status == (code == 0 ? nil : code))
        #expect(h.state.lastError?.attempts == 1)
        #expect(DeviceStateName.of(h.state, pending: h.queue.count) == .retrying)
        // The next attempt succeeds: the error clears and the device is registered.
        h.run()
        #expect(h.endpoints == ["push_token_put", "push_token_put"])
        #expect(h.state.lastError == nil)
        #expect(DeviceStateName.of(h.state, pending: h.queue.count) == .registered)
    }

    @Test("Retry-After is a floor under the backoff")
    func retryAfterHonoured() {
        var h = registeredDevice()
        h.enqueue(.setToken(token(2)))
        h.run { _, _ in .status(429, retryAfter: 120) }
        let t = h.transitions.last!
        let now = Date(timeIntervalSince1970: Double(h.nowMs - 1) / 1000)
        #expect(t.retryAt! >= now.addingTimeInterval(120))
    }

    @Test("backoff grows exponentially between the initial delay and the cap")
    func backoffBounds() {
        let r = RetryPolicy(initialDelayMs: 500, maxDelayMs: 10_000)
        #expect(r.delay(afterFailures: 1, jitter: 0.99, retryAfterSeconds: nil) == 0.5)
        #expect(r.delay(afterFailures: 3, jitter: 1, retryAfterSeconds: nil) == 2.0)
        #expect(r.delay(afterFailures: 3, jitter: 0, retryAfterSeconds: nil) == 0.5)
        #expect(r.delay(afterFailures: 30, jitter: 1, retryAfterSeconds: nil) == 10)
        #expect(r.delay(afterFailures: 500, jitter: 1, retryAfterSeconds: nil) == 10)
        #expect(r.delay(afterFailures: 2, jitter: 0, retryAfterSeconds: 30) == 30)
    }

    @Test("400 on the push token fails the device with the reason; a new intent retries it")
    func permanentPushToken() {
        var h = registeredDevice()
        h.enqueue(.setToken(token(2)))
        h.run { _, _ in .status(400) }
        #expect(h.state.failed)
        #expect(h.state.lastError?.step == "push-token")
        #expect(h.state.lastError?.message.contains("400") == true)
        #expect(h.queue.count == 1)
        h.run()
        #expect(h.endpoints == ["push_token_put", "push_token_put"])
        #expect(!h.state.failed && h.queue.isEmpty)
    }

    @Test("a permanent event failure is recorded and skipped; the token still goes")
    func eventSkipped() {
        var h = Harness()
        h.enqueue(start())
        h.run { call, _ in call.endpoint == "events" ? .status(404) : .ok(call) }
        #expect(h.endpoints == ["client", "contact_anonymous", "events", "push_token_put"])
        #expect(!h.state.failed)
        // The push token's success cleared the skipped event's error.
        #expect(h.state.lastError == nil)
        #expect(DeviceStateName.of(h.state, pending: h.queue.count) == .registered)
    }

    @Test("a response without X-Client-State keeps the stored one")
    func missingClientStateKept() {
        var h = registeredDevice()
        let before = h.state.clientState
        h.enqueue(start())
        h.run { _, _ in MEAnswer(outcome: .success(contactToken: nil, refreshToken: nil), clientState: nil) }
        #expect(h.state.clientState == before)
    }
}
