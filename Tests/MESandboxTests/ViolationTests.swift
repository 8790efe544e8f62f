import AsyncHTTPClient
import Foundation
import MESandbox
import NIOCore
import NIOHTTP1
import Testing

/// The sandbox as an oracle for the workflow invariants: violations, their listing, and strict mode.
@Suite("invariant violations")
struct ViolationTests {
    static let kinds = SandboxViolation.Kind.self

    @Test("the SDK workflow (register, anonymous link, event, push token, refresh after expiry, login) records none")
    func happyWorkflowRecordsNothing() async throws {
        try await SandboxHarness.withSandbox { harness in
            var device = TestDevice(harness)
            #expect(try await device.register().status == 204)
            #expect(try await device.linkAnonymous().status == 200)
            #expect(try await device.sendEvent("app:start").status == 204)
            #expect(try await device.setPushToken("fcm-token-1").status == 204)
            // The same token again, from the holder itself, is no I1 violation.
            #expect(try await device.setPushToken("fcm-token-1").status == 204)
            // Nor is the same token on a client of another app.
            var other = TestDevice(harness, appCode: "EMS98-76543")
            _ = try await other.register()
            _ = try await other.linkAnonymous()
            #expect(try await other.setPushToken("fcm-token-1").status == 204)
            // Expired on demand, not by a short lifetime: a loaded machine must not expire it before the PUTs.
            await harness.sandbox.expireContactTokens()
            #expect(try await device.sendEvent().status == 401)
            #expect(try await device.refresh().status == 200)
            #expect(try await device.sendEvent().status == 204)
            #expect(try await device.linkIdentified().status == 200)
            #expect(try await device.setPushToken("fcm-token-2").status == 204)
            #expect(try await device.send(.DELETE, "/push-token", body: "{}").status == 204)

            #expect(await harness.sandbox.violations().isEmpty)
            #expect(await harness.sandbox.violationCount() == 0)
            let reply = try await harness.send(.GET, "/_sandbox/violations")
            #expect(reply.status == 200 && reply.body == "[]")
            #expect(reply.headers.first(name: "X-Sandbox-Violation-Count") == "0")
        }
    }

    @Test("token-on-two-clients: a PUT of a token another client of the app holds")
    func tokenOnTwoClients() async throws {
        try await SandboxHarness.withSandbox { harness in
            let token = "fcm-secret-token:APA91bShared"
            var first = TestDevice(harness, clientId: "holder-1")
            var second = TestDevice(harness, clientId: "taker-2")
            _ = try await first.register()
            _ = try await first.linkAnonymous()
            _ = try await second.register()
            _ = try await second.linkAnonymous()
            #expect(try await first.setPushToken(token).status == 204)
            #expect(await harness.sandbox.violations().isEmpty)
            // Outside strict mode it is still processed as before.
            #expect(try await second.setPushToken(token).status == 204)

            let violations = await harness.sandbox.violations()
            #expect(violations.map(\.kind) == [Self.kinds.tokenOnTwoClients.rawValue])
            let violation = try #require(violations.first)
            #expect(violation.seq == 1 && violation.clientId == "taker-2" && violation.appCode == "EMS12-34567")
            #expect(violation.method == "PUT" && violation.path == "/v3/apps/EMS12-34567/client/push-token")
            #expect(violation.detail.contains("holder-1"))
            #expect(!violation.detail.contains(token) && !violation.detail.contains("APA91b"))
            #expect(violation.detail.contains("sha256:"))

            // The first client gives the token up: the second may take it.
            #expect(try await first.send(.DELETE, "/push-token", body: "{}").status == 204)
            #expect(try await second.setPushToken(token).status == 204)
            #expect(await harness.sandbox.violationCount() == 1)
        }
    }

    @Test("overlapping-request: a request of a client while another of it is in flight")
    func overlappingRequest() async throws {
        try await SandboxHarness.withSandbox { harness in
            var device = TestDevice(harness)
            _ = try await device.register()
            _ = try await device.linkAnonymous()

            // The first request's body is held back, so its handler stays before the state decision.
            let (chunks, feed) = AsyncStream.makeStream(of: ByteBuffer.self)
            var held = HTTPClientRequest(url: harness.baseURL + device.path("/events"))
            held.method = .POST
            held.headers.add(name: "Content-Type", value: "application/json")
            for (name, value) in device.nextHeaders("/events") { held.headers.add(name: name, value: value) }
            held.body = .stream(chunks, length: .unknown)
            let body = TestDevice.eventBody()
            let split = body.index(body.startIndex, offsetBy: 10)
            feed.yield(ByteBuffer(string: String(body[..<split])))
            let heldRequest = held
            let first = Task { try await HTTPClient.shared.execute(heldRequest, timeout: .seconds(30)) }

            var second = device
            var overlaps: [SandboxViolation] = []
            for _ in 0..<100 {
                #expect(try await second.sendEvent().status == 204)
                overlaps = await harness.sandbox.violations().filter { $0.kind == Self.kinds.overlappingRequest.rawValue }
                if !overlaps.isEmpty { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            feed.yield(ByteBuffer(string: String(body[split...])))
            feed.finish()
            let response = try await first.value
            #expect(response.status == .noContent)

            #expect(overlaps.count == 1)
            #expect(overlaps.first?.clientId == device.clientId)
            #expect(overlaps.first?.path == "/v3/apps/EMS12-34567/client/events")
            let contactToken = try #require(device.contactToken)
            #expect(overlaps.first.map { !$0.detail.contains(contactToken) } == true)
        }
    }

    @Test("overlapping-request and stale-client-state: the latency sleep after the decision is not in flight, and its answer's state may go unread")
    func latencyIsNotInFlight() async throws {
        try await SandboxHarness.withSandbox { harness in
            var device = TestDevice(harness)
            _ = try await device.register()
            _ = try await device.linkAnonymous()
            try await harness.addFault(#"{"latencyMs": 1500, "path": "/client/events"}"#)
            let slow = device
            let first = Task {
                var device = slow
                return try await device.sendEvent()
            }
            // The slow request is decided (logged) before it sleeps.
            var waited = 0
            while await harness.sandbox.requestLog().count < 3, waited < 200 {
                try await Task.sleep(for: .milliseconds(20))
                waited += 1
            }
            #expect(await harness.sandbox.requestLog().count == 3)
            _ = device.nextHeaders("/events")  // the slow request used this order
            #expect(try await device.sendEvent().status == 204)
            #expect(try await first.value.status == 204)

            // Not overlapping; and the slow answer's client state, which the second request could not know yet
            // (a caller whose request timed out never reads it), is not required: the state before it is accepted.
            #expect(await harness.sandbox.violations().isEmpty)
            #expect(await harness.sandbox.client(device.clientId)?.counts.staleClientStates == 0)
        }
    }

    @Test("request-order-not-increasing: equal or lower X-Request-Order, faulted requests included")
    func requestOrder() async throws {
        try await SandboxHarness.withSandbox { harness in
            var device = TestDevice(harness)
            _ = try await device.register()
            _ = try await device.linkAnonymous()
            let order = device.nextOrder
            #expect(try await device.sendEvent().status == 204)
            #expect(try await device.send(.POST, "/events", body: TestDevice.eventBody(), order: order).status == 204)

            // A replay after a fault must carry a new order too.
            try await harness.addFault(#"{"status": 503, "path": "/client/events"}"#)
            let faulted = device.nextOrder
            #expect(try await device.sendEvent().status == 503)
            #expect(try await device.send(.POST, "/events", body: TestDevice.eventBody(), order: faulted).status == 204)

            let violations = await harness.sandbox.violations()
            #expect(violations.map(\.kind) == Array(repeating: Self.kinds.requestOrderNotIncreasing.rawValue, count: 2))
            #expect(violations.first?.detail.contains(String(order)) == true)
            #expect(violations.map(\.seq) == [1, 2])
            #expect(await harness.sandbox.client(device.clientId)?.counts.orderViolations == 2)
        }
    }

    @Test("stale-client-state: an older or missing X-Client-State; close and no-client-state faults issue none")
    func staleClientState() async throws {
        try await SandboxHarness.withSandbox { harness in
            var device = TestDevice(harness)
            _ = try await device.register()
            let old = try #require(device.clientState)
            _ = try await device.linkAnonymous()
            #expect(try await device.setPushToken("fcm-stale-check-token").status == 204)

            // A dropped connection and a no-client-state answer send no state: echoing the previous one is right.
            try await harness.addFault(#"{"mode": "close", "path": "/client/events"}"#)
            await #expect(throws: HTTPClientError.remoteConnectionClosed) { _ = try await device.sendEvent() }
            try await harness.addFault(#"{"mode": "no-client-state", "path": "/client/events"}"#)
            #expect(try await device.sendEvent().status == 204)
            #expect(try await device.sendEvent().status == 204)
            #expect(await harness.sandbox.violations().isEmpty)

            var stale = device
            stale.clientState = old
            #expect(try await stale.sendEvent().status == 204)
            var without = stale
            without.clientState = nil
            #expect(try await without.sendEvent().status == 204)

            let violations = await harness.sandbox.violations()
            #expect(violations.map(\.kind) == Array(repeating: Self.kinds.staleClientState.rawValue, count: 2))
            #expect(violations.first?.detail.contains("#1") == true)
            #expect(violations.last?.detail.contains("missing") == true)
            for violation in violations {
                #expect(!violation.detail.contains(old) && !violation.detail.contains("fcm-stale-check-token"))
            }
        }
    }

    @Test("stale-client-state: a retry of the same call may carry the state before the newest (its answer went unread); another call may not")
    func retryAfterAnUnreadAnswer() async throws {
        try await SandboxHarness.withSandbox { harness in
            var device = TestDevice(harness)
            _ = try await device.register()
            _ = try await device.linkAnonymous()
            let beforeNewest = device.clientState
            // The caller gave up on this answer (its timeout) and never read the state it carried.
            #expect(try await device.sendEvent().status == 204)
            var retry = device
            retry.clientState = beforeNewest
            #expect(try await retry.sendEvent().status == 204)
            #expect(await harness.sandbox.violations().isEmpty)
            // The retry's answer was read; the state just before it is not accepted on another call.
            let justBefore = retry.clientState
            #expect(try await retry.sendEvent().status == 204)
            var other = retry
            other.clientState = justBefore
            #expect(try await other.setPushToken("fcm-retry-token").status == 204)
            #expect(await harness.sandbox.violations().map(\.kind) == [Self.kinds.staleClientState.rawValue])
        }
    }

    @Test("unexpected-contact-token: on the identified link and the refresh, not on the anonymous link")
    func unexpectedContactToken() async throws {
        try await SandboxHarness.withSandbox { harness in
            var device = TestDevice(harness)
            _ = try await device.register()
            _ = try await device.linkAnonymous()
            #expect(try await device.send(.POST, "/contact?anonymous=true", body: "{}", contactToken: true).status == 200)
            #expect(try await device.send(.POST, "", body: TestDevice.deviceInfo, contactToken: true).status == 204)
            #expect(await harness.sandbox.violations().isEmpty)

            let contactToken = try #require(device.contactToken)
            let refreshToken = try #require(device.refreshToken)
            #expect(try await device.send(.POST, "/contact-token",
                body: #"{"refreshToken": "\#(refreshToken)"}"#, contactToken: true).status == 200)
            let used = try #require(device.contactToken)
            #expect(try await device.send(.POST, "/contact",
                body: #"{"contactFieldId": 3, "contactFieldValue": "jane@example.com"}"#, contactToken: true).status == 200)

            let violations = await harness.sandbox.violations()
            #expect(violations.map(\.kind) == Array(repeating: Self.kinds.unexpectedContactToken.rawValue, count: 2))
            #expect(violations.map(\.path) == ["/v3/apps/EMS12-34567/client/contact-token", "/v3/apps/EMS12-34567/client/contact"])
            for violation in violations {
                for secret in [contactToken, refreshToken, used, "jane@example.com"] {
                    #expect(!violation.detail.contains(secret))
                }
            }
        }
    }

    @Test("missing-header: X-Request-Order, the SDK headers, X-Contact-Token on contact-token calls")
    func missingHeader() async throws {
        try await SandboxHarness.withSandbox { harness in
            // No X-Client-Id: answered 400 as before, nothing recorded.
            _ = try await harness.send(.POST, "/v3/apps/EMS12-34567/client", body: TestDevice.deviceInfo)
            #expect(await harness.sandbox.violations().isEmpty)

            var device = TestDevice(harness, clientId: "bare")
            device.sendsSDKHeaders = false
            #expect(try await device.register().status == 204)
            device.sendsSDKHeaders = true
            _ = try await device.linkAnonymous()
            #expect(try await device.send(.PUT, "/push-token", body: #"{"pushToken": "t"}"#, contactToken: false).status == 401)
            #expect(try await device.send(.DELETE, "/push-token", body: "{}", contactToken: false).status == 401)
            #expect(try await device.send(.POST, "/events", body: TestDevice.eventBody(), version: "v4",
                contactToken: false).status == 401)
            let noOrder = try await harness.send(.POST, device.path(""), headers: [
                ("X-Client-Id", "bare"), ("X-Client-State", device.clientState ?? ""),
                ("X-EMARSYS-SDK-VERSION", "3.11.0"), ("X-EMARSYS-SDK-MODE", "production"),
            ], body: TestDevice.deviceInfo)
            #expect(noOrder.status == 400)

            let violations = await harness.sandbox.violations()
            #expect(violations.allSatisfy { $0.kind == Self.kinds.missingHeader.rawValue && $0.clientId == "bare" })
            #expect(violations.map(\.detail) == [
                "missing X-EMARSYS-SDK-VERSION, X-EMARSYS-SDK-MODE",
                "missing X-Contact-Token", "missing X-Contact-Token", "missing X-Contact-Token",
                "missing X-Request-Order",
            ])
            #expect(violations.map(\.method) == ["POST", "PUT", "DELETE", "POST", "POST"])
        }
    }

    @Test("strict mode: a second client's PUT of a held token is 409 and changes nothing")
    func strictTokenOnTwoClients() async throws {
        try await SandboxHarness.withSandbox(configuration: .init(strict: true)) { harness in
            #expect(await harness.sandbox.isStrict())
            let token = "apns-0123456789abcdef"
            var first = TestDevice(harness)
            var second = TestDevice(harness)
            _ = try await first.register()
            _ = try await first.linkAnonymous()
            _ = try await second.register()
            _ = try await second.linkAnonymous()
            #expect(try await first.setPushToken(token).status == 204)
            try await harness.addFault(#"{"status": 503, "path": "push-token"}"#)

            let stateBefore = second.clientState
            let reply = try await second.setPushToken(token)
            #expect(reply.status == 409)
            #expect(reply.json?["status"] as? Int == 409)
            let message = try #require(reply.json?["error"] as? String)
            #expect(message.hasPrefix("invariant violation: token-on-two-clients: "))
            #expect(message.contains(first.clientId) && !message.contains(token))
            #expect(reply.clientState == nil && second.clientState == stateBefore)

            #expect(await harness.sandbox.client(first.clientId)?.pushToken == token)
            let view = try #require(await harness.sandbox.client(second.clientId))
            #expect(view.pushToken == nil && view.counts.pushTokenPuts == 0)
            // The refused request used no fault count.
            #expect(await harness.sandbox.faults().first?.remaining == 1)
            #expect(await harness.sandbox.violations().map(\.kind) == [Self.kinds.tokenOnTwoClients.rawValue])
            // The second client's state is unchanged, so its next (good) request is clean.
            #expect(try await second.setPushToken("apns-other").status == 503)
            #expect(try await second.setPushToken("apns-other").status == 204)
            #expect(await harness.sandbox.violationCount() == 1)
        }
    }

    @Test("strict mode at run time: observable violations are 409 too; the switch validates its body")
    func strictSwitch() async throws {
        try await SandboxHarness.withSandbox { harness in
            var device = TestDevice(harness)
            _ = try await device.register()
            _ = try await device.linkAnonymous()

            let on = try await harness.send(.POST, "/_sandbox/strict", body: #"{"enabled": true}"#)
            #expect(on.status == 200 && on.body == #"{"strict":true}"#)
            var stale = device
            stale.clientState = "not-the-newest"
            let refused = try await stale.setPushToken("fcm-x")
            device.nextOrder = stale.nextOrder
            #expect(refused.status == 409)
            #expect((refused.json?["error"] as? String)?.hasPrefix("invariant violation: stale-client-state: ") == true)
            #expect(refused.clientState == nil)
            #expect(await harness.sandbox.client(device.clientId)?.pushToken == nil)
            // The device still holds the newest state: nothing was issued for the refused request.
            #expect(try await device.setPushToken("fcm-x").status == 204)

            for bad in [#"{"enabled": "yes"}"#, "{}", "not json", ""] {
                let reply = try await harness.send(.POST, "/_sandbox/strict", body: bad)
                #expect(reply.status == 400)
            }
            #expect(await harness.sandbox.isStrict())

            let off = try await harness.send(.POST, "/_sandbox/strict", body: #"{"enabled": false}"#)
            #expect(off.status == 200 && off.body == #"{"strict":false}"#)
            stale.nextOrder = device.nextOrder
            #expect(try await stale.sendEvent().status == 204)
            #expect(await harness.sandbox.violations().map(\.kind) == Array(
                repeating: Self.kinds.staleClientState.rawValue, count: 2))
        }
    }

    @Test("GET filters by clientId and kind; an unknown kind is 400")
    func filters() async throws {
        try await SandboxHarness.withSandbox { harness in
            var first = TestDevice(harness)
            var second = TestDevice(harness)
            first.sendsSDKHeaders = false
            _ = try await first.register()
            _ = try await second.register()
            var stale = second
            stale.clientState = nil
            _ = try await stale.linkAnonymous()  // another call than the one whose state it drops: no retry
            let order = first.nextOrder - 1
            _ = try await first.send(.POST, "", body: TestDevice.deviceInfo, order: order)

            let all = try await harness.get("/_sandbox/violations", as: [SandboxViolation].self)
            #expect(all.map(\.seq) == Array(1..<(all.count + 1)))
            #expect(all.map(\.seq) == (await harness.sandbox.violations()).map(\.seq))
            #expect(all.map(\.kind) == ["missing-header", "stale-client-state", "request-order-not-increasing", "missing-header"])
            let mine = try await harness.get("/_sandbox/violations?clientId=\(first.clientId)", as: [SandboxViolation].self)
            #expect(!mine.isEmpty && mine.allSatisfy { $0.clientId == first.clientId })
            let stales = try await harness.get("/_sandbox/violations?kind=stale-client-state", as: [SandboxViolation].self)
            #expect(stales.map(\.clientId) == [second.clientId])
            let both = try await harness.get(
                "/_sandbox/violations?clientId=\(first.clientId)&kind=request-order-not-increasing", as: [SandboxViolation].self)
            #expect(both.count == 1 && both.first?.clientId == first.clientId)
            let none = try await harness.get(
                "/_sandbox/violations?clientId=\(second.clientId)&kind=missing-header", as: [SandboxViolation].self)
            #expect(none.isEmpty)
            let typo = try await harness.send(.GET, "/_sandbox/violations?kind=stale-state")
            #expect(typo.status == 400 && typo.json?["field"] as? String == "kind")
        }
    }

    @Test("DELETE and reset clear the violations and their count; strict mode survives a reset")
    func clearing() async throws {
        try await SandboxHarness.withSandbox { harness in
            var device = TestDevice(harness)
            device.sendsSDKHeaders = false
            _ = try await device.register()
            #expect(await harness.sandbox.violationCount() == 1)
            #expect(try await harness.send(.DELETE, "/_sandbox/violations").status == 204)
            #expect(await harness.sandbox.violations().isEmpty)
            #expect(await harness.sandbox.violationCount() == 0)

            _ = try await device.register()
            let listed = try await harness.get("/_sandbox/violations", as: [SandboxViolation].self)
            #expect(listed.map(\.seq) == [1])
            await harness.sandbox.setStrict(true)
            #expect(try await harness.send(.POST, "/_sandbox/reset").status == 204)
            #expect(await harness.sandbox.violations().isEmpty)
            #expect(await harness.sandbox.violationCount() == 0)
            #expect(await harness.sandbox.isStrict())
        }
    }

    @Test("the list is bounded by maxRequestLog, the count is not")
    func boundedList() async throws {
        try await SandboxHarness.withSandbox(configuration: .init(maxRequestLog: 2)) { harness in
            var device = TestDevice(harness)
            device.sendsSDKHeaders = false
            for _ in 0..<5 { _ = try await device.register() }
            #expect(await harness.sandbox.violations().map(\.seq) == [4, 5])
            #expect(await harness.sandbox.violationCount() == 5)
            let reply = try await harness.send(.GET, "/_sandbox/violations")
            #expect(reply.headers.first(name: "X-Sandbox-Violation-Count") == "5")
        }
    }
}
