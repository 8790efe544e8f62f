import Foundation
import MESandbox
import Testing

/// The start-up workflow and contact handling, as the bridge drives them.
@Suite("ME workflow")
struct WorkflowTests {
    @Test("happy path: client, anonymous link, event, push token; inspection shows it all")
    func happyPath() async throws {
        try await SandboxHarness.withSandbox { harness in
            var device = TestDevice(harness)
            #expect(try await device.register().status == 204)
            let link = try await device.linkAnonymous()
            #expect(link.status == 200)
            #expect(device.contactToken != nil && device.refreshToken != nil)
            #expect(try await device.sendEvent().status == 204)
            #expect(try await device.sendEvent("app:start", version: "v4").status == 204)
            #expect(try await device.setPushToken("fcm-token-1").status == 204)

            let view = try #require(await harness.sandbox.client(device.clientId))
            #expect(view.appCode == "EMS12-34567")
            #expect(view.platform == "android")
            #expect(view.pushToken == "fcm-token-1")
            #expect(view.contact == SandboxContact(kind: .anonymous))
            #expect(view.events.map(\.name) == ["session:start", "app:start"])
            #expect(view.events.first?.attributes == ["origin": "test"])
            #expect(view.requestCount == 5)
            #expect(view.counts.client == 1 && view.counts.anonymousLinks == 1)
            #expect(view.counts.eventRequests == 2 && view.counts.pushTokenPuts == 1)
            #expect(view.counts.orderViolations == 0 && view.counts.staleClientStates == 0)
            #expect(view.requests.allSatisfy { $0.sentClientState })
            if case .object(let properties)? = view.properties {
                #expect(properties["deviceModel"] == .string("Pixel 8"))
            } else {
                Issue.record("properties missing")
            }

            // The HTTP inspection route serves the same view.
            let viaHTTP = try await harness.get("/_sandbox/clients/\(device.clientId)", as: SandboxClientView.self)
            #expect(viaHTTP.pushToken == "fcm-token-1")
            #expect(viaHTTP.requests.map(\.status) == [204, 200, 204, 204, 204])
            #expect(try await harness.send(.GET, "/_sandbox/clients/nobody").status == 404)

            // Deleting the push token clears it.
            #expect(try await device.send(.DELETE, "/push-token").status == 204)
            #expect(await harness.sandbox.client(device.clientId)?.pushToken == nil)
            #expect(await harness.sandbox.client(device.clientId)?.counts.pushTokenDeletes == 1)
        }
    }

    @Test("identified link replaces the anonymous contact and supersedes its tokens")
    func identifiedLink() async throws {
        try await SandboxHarness.withSandbox { harness in
            var device = TestDevice(harness)
            _ = try await device.register()
            _ = try await device.linkAnonymous()
            let anonymousToken = try #require(device.contactToken)

            let login = try await device.send(
                .POST, "/contact", body: #"{"contactFieldId": 3, "contactFieldValue": "jane@example.com"}"#)
            #expect(login.status == 200)
            #expect(device.contactToken != anonymousToken)
            let view = try #require(await harness.sandbox.client(device.clientId))
            #expect(view.contact == SandboxContact(kind: .identified, fieldId: 3, fieldValue: "jane@example.com"))
            #expect(view.counts.identifiedLinks == 1)
            #expect(try await device.sendEvent().status == 204)

            var stale = device
            stale.contactToken = anonymousToken
            #expect(try await stale.sendEvent().status == 401)

            // Bad identified bodies are refused, naming the field.
            let badId = try await device.send(.POST, "/contact", body: #"{"contactFieldId": "3", "contactFieldValue": "x"}"#)
            #expect(badId.status == 400)
            #expect(badId.json?["field"] as? String == "contactFieldId")
            #expect(try await device.send(.POST, "/contact", body: nil).status == 400)
            let openId = try await device.send(.POST, "/contact", body: #"{"contactFieldId": 3, "openIdToken": "eyJ"}"#)
            #expect(openId.status == 200)
        }
    }

    @Test("contact link before registration is refused")
    func linkRequiresRegistration() async throws {
        try await SandboxHarness.withSandbox { harness in
            var device = TestDevice(harness)
            let reply = try await device.linkAnonymous()
            #expect(reply.status == 400)
            #expect((reply.json?["error"] as? String)?.contains("client not registered") == true)
        }
    }
}
