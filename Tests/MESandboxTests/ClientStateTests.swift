import Foundation
import MESandbox
import Testing

/// X-Client-State issuance and the order / staleness observations.
@Suite("client state and order")
struct ClientStateTests {
    @Test("every answer carries a new JWT-shaped X-Client-State holding the push token")
    func clientStateChanges() async throws {
        try await SandboxHarness.withSandbox { harness in
            var device = TestDevice(harness)
            var seen: Set<String> = []
            var replies: [Reply] = []
            replies.append(try await device.register())
            replies.append(try await device.linkAnonymous())
            replies.append(try await device.setPushToken("apns-hex"))
            replies.append(try await device.send(.PUT, "/push-token", body: "{}"))  // 400, still a new state
            for reply in replies {
                let state = try #require(reply.clientState)
                #expect(seen.insert(state).inserted)
            }
            let newestState = try #require(device.clientState)
            let payload = try #require(jwtPayload(newestState))
            #expect(payload["pushToken"] as? String == "apns-hex")
            #expect(payload["clientId"] as? String == device.clientId)
            #expect(payload["appCode"] as? String == "EMS12-34567")
            // Anonymous: an empty contactField (the web SDK reads it to know nobody is logged in).
            #expect((payload["contactField"] as? [String: Any])?.isEmpty == true)
            #expect(payload["platform"] as? String == "android")
            #expect(payload["seq"] as? Int == 4)
            let header = try #require(device.clientState?.split(separator: ".").first)
            #expect(String(header) == "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9")

            // Before a push token is set the payload says null.
            var fresh = TestDevice(harness)
            _ = try await fresh.register()
            let freshState = try #require(fresh.clientState)
            let freshPayload = try #require(jwtPayload(freshState))
            #expect(freshPayload["pushToken"] is NSNull)
            #expect(freshPayload["contactField"] is NSNull)
        }
    }

    @Test("order violations and stale client states are counted, not rejected")
    func orderAndStaleness() async throws {
        try await SandboxHarness.withSandbox { harness in
            var device = TestDevice(harness)
            _ = try await device.register()
            let order = device.nextOrder
            #expect(try await device.linkAnonymous().status == 200)
            #expect(try await device.sendEvent().status == 204)
            #expect(try await device.send(.POST, "/events", body: """
                {"events": [{"type": "custom", "name": "x", "timestamp": "2026-11-29T10:00:00.000Z"}]}
                """, order: order).status == 204)

            var stale = device
            stale.clientState = "not-the-newest"
            #expect(try await stale.sendEvent().status == 204)

            let view = try #require(await harness.sandbox.client(device.clientId))
            #expect(view.counts.orderViolations == 1)
            #expect(view.counts.staleClientStates == 1)
            #expect(view.requests.map(\.sentClientState) == [true, true, true, true, false])
            #expect(view.requests[3].requestOrder == order)
        }
    }
}
