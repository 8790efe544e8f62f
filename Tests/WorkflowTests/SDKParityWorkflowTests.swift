import Foundation
import MobileEngage
import Testing
@testable import Workflow

/// The SDK parity rules as pure planner and reducer behaviour (the integration tests in PushbridgeTests show the
/// same against the sandbox).
@Suite("SDK parity in the workflow")
struct SDKParityWorkflowTests {
    static func linkWithoutRefreshToken() -> MEAnswer {
        MEAnswer(outcome: .success(contactToken: "ct-\(UUID().uuidString)", refreshToken: nil), clientState: "cs-\(UUID().uuidString)")
    }

    @Test("401 on a POST /client that carried a contact token refreshes and replays; without a token it is permanent")
    func clientUnauthorized() {
        var h = registeredDevice()
        h.enqueue(start(info: DeviceInfo(osVersion: "15")))
        var first = true
        h.run { call, _ in
            if call.endpoint == "client" && first { first = false; return .status(401) }
            return .ok(call)
        }
        #expect(Array(h.endpoints.prefix(3)) == ["client", "contact_token", "client"])
        #expect(h.contexts[0].contactToken != nil)
        #expect(!h.state.failed)

        var fresh = Harness()
        fresh.enqueue(start())
        fresh.run { call, _ in call.endpoint == "client" ? .status(401) : .ok(call) }
        #expect(fresh.endpoints == ["client"])
        #expect(fresh.state.failed)
    }

    @Test("a link answer without a refresh token keeps the stored one on a re-link of the same contact, drops it for another")
    func refreshTokenKeptForTheSameContact() throws {
        // Four 401s on the PUT: three refreshes, then the re-link of the same (anonymous) contact, answered without
        // a refresh token: the stored one is kept.
        var h = registeredDevice()
        let stored = try #require(h.state.refreshToken)
        h.enqueue(.setToken(token(2)))
        var puts = 0
        h.run { call, _ in
            switch call.endpoint {
            case "push_token_put":
                puts += 1
                return puts <= 4 ? .status(401) : .ok(call)
            case "contact_anonymous": return Self.linkWithoutRefreshToken()
            default: return .ok(call)
            }
        }
        #expect(h.endpoints.filter { $0 == "contact_anonymous" }.count == 1)
        #expect(h.state.refreshToken == stored)
        #expect(h.state.pushTokenSent == token(2))

        // A login answered without one: another contact's refresh token is not kept.
        var login = registeredDevice()
        login.enqueue(.login(fieldId: 3, value: "someone"))
        login.run { call, _ in call.endpoint == "contact" ? Self.linkWithoutRefreshToken() : .ok(call) }
        #expect(login.state.linkedContact == .identified(fieldId: 3, value: "someone"))
        #expect(login.state.refreshToken == nil)
    }

    @Test("every OpenID login reaches ME, the same ID token again included")
    func openIdLoginsAlwaysLink() {
        var h = registeredDevice()
        h.enqueue(.openIdLogin(fieldId: 3, token: "id-token"))
        h.run()
        h.enqueue(.openIdLogin(fieldId: 3, token: "id-token"))
        h.run()
        let links = h.calls.filter { if case .linkOpenIdContact = $0 { true } else { false } }
        #expect(links.count == 2)
        #expect(h.state.linkedContact == .openId(fieldId: 3, token: "id-token"))
        #expect(h.queue.isEmpty)
    }

    @Test("after a successful refresh the replay waits refreshReplayDelayMs")
    func replayPause() {
        var h = registeredDevice()
        h.enqueue(.setToken(token(2)))
        h.run { call, i in i == 0 ? .status(401) : .ok(call) }
        #expect(h.endpoints.prefix(3) == ["push_token_put", "contact_token", "push_token_put"])
        let refresh = h.transitions[1]
        #expect(refresh.notBefore != nil && refresh.retryAt == nil && refresh.outcome == .success)
        // The replay goes out no sooner than 500 ms after the refresh (the harness's clock follows the pause).
        #expect(h.contexts[2].requestOrder - h.contexts[1].requestOrder >= 500)
    }

    @Test("mobile devices send events on v4 and echo the deviceEventState of the last answer; web push stays on v3")
    func deviceEventState() {
        var h = registeredDevice()
        let eventState = MEJSON.object(["seq": .number(1)])
        h.enqueue(.events([CustomEvent(name: "a", timestamp: "2026-01-01T00:00:00.000Z", attributes: nil)]))
        h.run { call, _ in
            if case .events = call { return MEAnswer(outcome: .success(contactToken: nil, refreshToken: nil), clientState: "cs", deviceEventState: eventState) }
            return .ok(call)
        }
        #expect(h.state.deviceEventState == eventState)
        h.enqueue(.events([CustomEvent(name: "b", timestamp: "2026-01-01T00:00:00.000Z", attributes: nil, sessionId: "s1")]))
        h.run()
        guard case .events(let events, let echoed) = h.calls.last else { Issue.record("no events call"); return }
        #expect(echoed == eventState)
        #expect(events.first?.sessionId == "s1")
        #expect(h.contexts.last?.eventsAPIVersion == .v4)

        var web = Harness(platform: "chrome")
        web.enqueue(start(token: token(1, provider: "chrome", platform: "chrome")))
        web.run()
        #expect(web.contexts.first?.eventsAPIVersion == .v3)
    }
}
