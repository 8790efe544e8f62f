import Foundation
import MESandbox
import NIOHTTP1
import Testing

/// What the sandbox does since the SDK parity work: v4 events with `deviceEventState`, web push domain codes,
/// the mobile SDKs' `pushSettings`, and link answers without a refresh token.
@Suite("sandbox: SDK parity")
struct SDKParitySandboxTests {
    static func eventsBody(deviceEventState: String? = nil) -> String {
        let state = deviceEventState.map { #", "deviceEventState": \#($0)"# } ?? ""
        return """
            {"events": [{"type": "custom", "name": "e", "timestamp": "2026-11-29T10:00:00.000Z"}], "clicks": [], "viewedMessages": []\(state)}
            """
    }

    static func kinds(_ harness: SandboxHarness) async -> [String] {
        await harness.sandbox.violations().map(\.kind)
    }

    @Test("v4 events: every other answer carries a deviceEventState, which the next v4 events request must echo")
    func deviceEventState() async throws {
        try await SandboxHarness.withSandbox { harness in
            var device = TestDevice(harness)
            _ = try await device.register()
            _ = try await device.linkAnonymous()
            let first = try await device.send(.POST, "/events", body: Self.eventsBody(), version: "v4")
            #expect(first.status == 200)
            let state = try #require(first.json?["deviceEventState"] as? [String: Any])
            let echoed = String(decoding: try JSONSerialization.data(withJSONObject: state, options: [.sortedKeys]), as: UTF8.self)
            // Echoed: fine; the answer carries none this time (204), the client keeps the one it has.
            #expect(try await device.send(.POST, "/events", body: Self.eventsBody(deviceEventState: echoed), version: "v4").status == 204)
            #expect(await Self.kinds(harness).isEmpty)
            #expect(try await device.send(.POST, "/events", body: Self.eventsBody(deviceEventState: echoed), version: "v4").status == 200)
            // A new one was issued; on a retry of the same call the one before it is still accepted (an answer the
            // caller never read).
            #expect(try await device.send(.POST, "/events", body: Self.eventsBody(deviceEventState: echoed), version: "v4").status == 204)
            #expect(await Self.kinds(harness).isEmpty)
            // That retry showed the caller never read the newest, and no answer since handed it over: after another
            // call the one before is still accepted (the next test has the case the end-to-end simulation found).
            #expect(try await device.setPushToken("fcm-token-1").status == 204)
            let fifth = try await device.send(.POST, "/events", body: Self.eventsBody(deviceEventState: echoed), version: "v4")
            #expect(fifth.status == 200)
            #expect(await Self.kinds(harness).isEmpty)
            let newest = try #require(fifth.json?["deviceEventState"] as? [String: Any])
            let echoedNewest = String(decoding: try JSONSerialization.data(withJSONObject: newest, options: [.sortedKeys]), as: UTF8.self)
            #expect(try await device.send(.POST, "/events", body: Self.eventsBody(deviceEventState: echoedNewest), version: "v4").status / 100 == 2)
            #expect(await Self.kinds(harness).isEmpty)
            // Not echoed at all: flagged.
            #expect(try await device.send(.POST, "/events", body: Self.eventsBody(), version: "v4").status / 100 == 2)
            #expect(await Self.kinds(harness) == ["device-event-state-not-echoed"])
            // v3 events neither carry nor check one.
            #expect(try await device.sendEvent().status == 204)
            #expect(await Self.kinds(harness).count == 1)
        }
    }

    @Test("deviceEventState: once a retry shows the newest was never read, the one before stays accepted until a new one")
    func deviceEventStateLostAnswer() async throws {
        try await SandboxHarness.withSandbox { harness in
            var device = TestDevice(harness)
            _ = try await device.register()
            _ = try await device.linkAnonymous()
            // The first answer carries state #1; the caller dies before reading it (a kill before its commit).
            let first = try await device.send(.POST, "/events", body: Self.eventsBody(), version: "v4")
            #expect(first.status == 200)
            // Its retry carries none, as before the first: a retry of the same call, accepted.
            #expect(try await device.send(.POST, "/events", body: Self.eventsBody(), version: "v4").status == 204)
            // A refresh in between (the retry was answered 401 in the run that found this): the caller still has
            // no state, and nothing since handed it #1, so the next events request without one is accepted too.
            #expect(try await device.refresh().status == 200)
            let third = try await device.send(.POST, "/events", body: Self.eventsBody(), version: "v4")
            #expect(third.status == 200)
            #expect(await Self.kinds(harness).isEmpty)
            // That answer issued #2. The caller loses it (a kill before the commit) and, after another call, sends
            // what it held before (none): a stale state, what an answer lost to a kill leaves behind (the end-to-end
            // simulation bounds them by kills).
            #expect(try await device.setPushToken("fcm-token-1").status == 204)
            #expect(try await device.send(.POST, "/events", body: Self.eventsBody(), version: "v4").status / 100 == 2)
            #expect(await Self.kinds(harness) == ["stale-device-event-state"])
            let violation = try #require(await harness.sandbox.violations().first)
            #expect(violation.detail.hasSuffix("(sent none, newest #2, may hold none, #2)"))
            #expect(violation.requestSeq == (await harness.sandbox.requestLog().last?.seq))
            // Once: the caller showed it never read #2, so the same state again is not flagged again.
            #expect(try await device.send(.POST, "/events", body: Self.eventsBody(), version: "v4").status / 100 == 2)
            #expect(await Self.kinds(harness) == ["stale-device-event-state"])
            // #1 is one the caller cannot hold: its request after #1 was issued carried none. Not echoed.
            let first1 = try #require(first.json?["deviceEventState"] as? [String: Any])
            let echoedFirst = String(decoding: try JSONSerialization.data(withJSONObject: first1, options: [.sortedKeys]), as: UTF8.self)
            #expect(try await device.send(.POST, "/events", body: Self.eventsBody(deviceEventState: echoedFirst), version: "v4").status / 100 == 2)
            #expect(await Self.kinds(harness) == ["stale-device-event-state", "device-event-state-not-echoed"])
        }
    }

    @Test("deviceEventState: an answer a latency fault delayed and one lost to a kill leave the caller with what it held before both")
    func deviceEventStateDelayedThenLost() async throws {
        // The end-to-end simulation on PostgreSQL (seed 20261203): #1 came in a delayed answer the bridge gave up on,
        // a later request carried none, #2 was issued and lost to a kill, and after other calls the bridge sent
        // none again. The sandbox judged it by "the one before the newest" (#1) and called it not echoed.
        try await SandboxHarness.withSandbox { harness in
            var device = TestDevice(harness)
            _ = try await device.register()
            _ = try await device.linkAnonymous()
            try await harness.addFault(#"{"latencyMs": 200, "path": "/client/events"}"#)
            let delayed = try await device.send(.POST, "/events", body: Self.eventsBody(), version: "v4")
            #expect(delayed.status == 200)
            #expect(delayed.json?["deviceEventState"] != nil)
            // The caller never read #1: after another call it still sends none, accepted (the answer was delayed).
            #expect(try await device.refresh().status == 200)
            #expect(try await device.send(.POST, "/events", body: Self.eventsBody(), version: "v4").status == 204)
            #expect(try await device.send(.POST, "/events", body: Self.eventsBody(), version: "v4").status == 200)
            #expect(await Self.kinds(harness).isEmpty)
            // #2 went out and was lost to a kill; after another call the caller sends none again: stale (soft), once.
            #expect(try await device.setPushToken("fcm-token-1").status == 204)
            #expect(try await device.send(.POST, "/events", body: Self.eventsBody(), version: "v4").status / 100 == 2)
            let violations = await harness.sandbox.violations()
            #expect(violations.map(\.kind) == ["stale-device-event-state"])
            #expect(violations.first?.detail.hasSuffix("(sent none, newest #2, may hold none, #2)") == true)
        }
    }

    @Test("POST /client of a mobile platform without pushSettings is flagged; web push needs none")
    func missingPushSettings() async throws {
        try await SandboxHarness.withSandbox { harness in
            var android = TestDevice(harness)
            let bare = #"{"platform": "android", "applicationVersion": "1", "deviceModel": "m", "osVersion": "14", "sdkVersion": "3.11.0", "language": "en", "timezone": "+0000"}"#
            let registered = try await android.send(.POST, "", body: bare)
            #expect(registered.status == 204)
            #expect(await Self.kinds(harness) == ["missing-push-settings"])
            var web = TestDevice(harness)
            let webRegistered = try await web.send(.POST, "", body: bare.replacingOccurrences(of: "android", with: "chrome"))
            #expect(webRegistered.status == 204)
            #expect(await Self.kinds(harness).count == 1)
        }
    }

    @Test("/v3/domains/{code}/client serves the same client service as /v3/apps/{code}/client")
    func domainRoutes() async throws {
        try await SandboxHarness.withSandbox { harness in
            var device = TestDevice(harness)
            let info = TestDevice.deviceInfo.replacingOccurrences(of: "android", with: "chrome")
            func domains(_ route: String) -> String { "/v3/domains/\(device.appCode)/client\(route)" }
            let register = try await harness.send(.POST, domains(""), headers: device.nextHeaders(""), body: info)
            #expect(register.status == 204)
            device.clientState = register.clientState
            let link = try await harness.send(.POST, domains("/contact?anonymous=true"), headers: device.nextHeaders("/contact?anonymous=true"), body: "{}")
            #expect(link.status == 200)
            device.clientState = link.clientState
            device.contactToken = link.json?["contactToken"] as? String
            let put = try await harness.send(.PUT, domains("/push-token"), headers: device.nextHeaders("/push-token"), body: #"{"pushToken": "{\"endpoint\":\"https://e\"}"}"#)
            #expect(put.status == 204)
            device.clientState = put.clientState
            // The same client, reached under /apps.
            #expect(try await device.sendEvent().status == 204)
            #expect(await harness.sandbox.client(device.clientId)?.pushToken == #"{"endpoint":"https://e"}"#)
            #expect(await Self.kinds(harness).isEmpty)
        }
    }

    @Test("fault no-refresh-token: the link answer has no refreshToken, and the one the client has keeps working")
    func noRefreshToken() async throws {
        try await SandboxHarness.withSandbox { harness in
            var device = TestDevice(harness)
            _ = try await device.register()
            _ = try await device.linkAnonymous()
            let kept = try #require(device.refreshToken)
            let fault = try await harness.send(.POST, "/_sandbox/faults", body: #"{"mode": "no-refresh-token", "path": "/client/contact", "count": 1}"#)
            #expect(fault.status == 201)
            let login = try await device.linkIdentified()
            #expect(login.status == 200)
            #expect(login.json?["contactToken"] is String)
            #expect(login.json?["refreshToken"] == nil)
            #expect(device.refreshToken == kept)
            await harness.sandbox.expireContactTokens()
            #expect(try await device.refresh().status == 200)
            #expect(try await device.sendEvent().status == 204)
            // The refreshed token is the new contact's.
            #expect(await harness.sandbox.client(device.clientId)?.contact?.kind == .identified)
        }
    }
}
