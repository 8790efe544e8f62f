import Foundation
import MESandbox
import Testing

/// Strict request checking: headers, bodies and the error bodies that name the culprit.
@Suite("request validation")
struct ValidationTests {
    @Test("missing X-Client-Id is a 400 without client state")
    func missingClientId() async throws {
        try await SandboxHarness.withSandbox { harness in
            let reply = try await harness.send(
                .POST, "/v3/apps/EMS12-34567/client", headers: [("X-Request-Order", "1")], body: TestDevice.deviceInfo)
            #expect(reply.status == 400)
            #expect(reply.json?["field"] as? String == "X-Client-Id")
            #expect(reply.clientState == nil)
        }
    }

    @Test("invalid platform and timezone are 400s naming the field, with a client state")
    func invalidDeviceInfo() async throws {
        try await SandboxHarness.withSandbox { harness in
            var device = TestDevice(harness)
            let platform = try await device.send(.POST, "", body: TestDevice.deviceInfo.replacingOccurrences(of: "android", with: "windows"))
            #expect(platform.status == 400)
            #expect(platform.json?["field"] as? String == "platform")
            #expect(platform.clientState != nil)

            let timezone = try await device.send(.POST, "", body: TestDevice.deviceInfo.replacingOccurrences(of: "+0100", with: "+1"))
            #expect(timezone.json?["field"] as? String == "timezone")

            #expect(try await device.send(.POST, "", body: "{not json").status == 400)
            #expect(try await device.send(.POST, "", body: "[]").status == 400)
            #expect(await harness.sandbox.client(device.clientId)?.platform == nil)
        }
    }

    @Test("what browsers and the web SDK send is taken: its timezone form, number and boolean attributes, extra members")
    func webSDKForms() async throws {
        try await SandboxHarness.withSandbox { harness in
            for zone in ["+0100", "-0800", "+5.530", "-3.530", "+5.7545", "+10.530", "+12.7545", "-9.530"] {
                var device = TestDevice(harness)
                let body = TestDevice.deviceInfo.replacingOccurrences(of: "+0100", with: zone)
                #expect(try await device.send(.POST, "", body: body).status == 204, "timezone \(zone)")
            }
            for zone in ["+1", "+5.5", "UTC", "+5.", "+.530", "+123.530", "+99.530", "+5.000", "+5.545", "+1.12345678", "+5.5301"] {
                var device = TestDevice(harness)
                let reply = try await device.send(.POST, "", body: TestDevice.deviceInfo.replacingOccurrences(of: "+0100", with: zone))
                #expect(reply.status == 400, "timezone \(zone)")
                #expect(reply.json?["field"] as? String == "timezone")
            }
            var device = TestDevice(harness)
            _ = try await device.register()
            // The web SDK's login carries contactFieldEncrypted; its events dnd and internal events.
            let login = try await device.send(.POST, "/contact", body: #"{"contactFieldId": 3, "contactFieldValue": "a@example.com", "contactFieldEncrypted": false}"#)
            #expect(login.status == 200)
            let events = try await device.send(.POST, "/events", body: """
                {"dnd": true, "events": [{"type": "custom", "name": "x", "timestamp": "2026-11-29T10:00:00.000Z",
                  "attributes": {"count": 3, "ratio": 0.5, "on": true, "s": "t"}}], "clicks": [], "viewedMessages": []}
                """)
            #expect(events.status == 204)
            let stored = try #require(await harness.sandbox.client(device.clientId)?.events.last?.attributes)
            #expect(stored == ["count": "3", "ratio": "0.5", "on": "true", "s": "t"])
        }
    }

    @Test("X-Request-Order is required and must be decimal")
    func requestOrderRequired() async throws {
        try await SandboxHarness.withSandbox { harness in
            let missing = try await harness.send(
                .POST, "/v3/apps/EMS12-34567/client", headers: [("X-Client-Id", "c1")], body: TestDevice.deviceInfo)
            #expect(missing.status == 400)
            #expect(missing.json?["field"] as? String == "X-Request-Order")
            let malformed = try await harness.send(
                .POST, "/v3/apps/EMS12-34567/client", headers: [("X-Client-Id", "c1"), ("X-Request-Order", "12a")],
                body: TestDevice.deviceInfo)
            #expect(malformed.status == 400)
        }
    }

    @Test("events envelope is checked field by field")
    func invalidEvents() async throws {
        try await SandboxHarness.withSandbox { harness in
            var device = TestDevice(harness)
            _ = try await device.register()
            _ = try await device.linkAnonymous()
            let noMillis = try await device.send(.POST, "/events", body: """
                {"events": [{"type": "custom", "name": "x", "timestamp": "2026-11-29T10:00:00Z"}]}
                """)
            #expect(noMillis.status == 400)
            #expect(noMillis.json?["field"] as? String == "events[0].timestamp")
            let badType = try await device.send(.POST, "/events", body: """
                {"events": [{"type": "other", "name": "x", "timestamp": "2026-11-29T10:00:00.000Z"}]}
                """)
            #expect(badType.json?["field"] as? String == "events[0].type")
            let badAttribute = try await device.send(.POST, "/events", body: """
                {"events": [{"type": "custom", "name": "x", "timestamp": "2026-11-29T10:00:00.000Z", "attributes": {"n": {"deep": 1}}}]}
                """)
            #expect(badAttribute.status == 400)
            #expect(badAttribute.json?["field"] as? String == "events[0].attributes.n")
            #expect(try await device.send(.PUT, "/push-token", body: #"{"pushToken": ""}"#).status == 400)
        }
    }
}
