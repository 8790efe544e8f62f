import Foundation
import MESandbox
import Testing

/// Contact tokens, their expiry and refresh, and refresh-token revocation.
@Suite("contact tokens")
struct AuthorizationTests {
    @Test("push token without a contact token is 401")
    func pushTokenWithoutContactToken() async throws {
        try await SandboxHarness.withSandbox { harness in
            var device = TestDevice(harness)
            _ = try await device.register()
            _ = try await device.linkAnonymous()
            let reply = try await device.send(.PUT, "/push-token", body: #"{"pushToken": "t"}"#, contactToken: false)
            #expect(reply.status == 401)
            #expect(reply.clientState != nil)
            #expect(await harness.sandbox.client(device.clientId)?.counts.unauthorized == 1)

            // Another client's token does not work either.
            var other = TestDevice(harness)
            _ = try await other.register()
            other.contactToken = device.contactToken
            #expect(try await other.setPushToken("t").status == 401)
        }
    }

    @Test("a contact token past its lifetime is 401; refresh gives a working one")
    func lifetimeExpiry() async throws {
        // A lifetime long enough that the refreshed token is still live when it is used on a loaded machine (with 1 s,
        // a full parallel test run could stall past it between the refresh and the PUT).
        try await SandboxHarness.withSandbox(configuration: .init(contactTokenLifetime: .seconds(3))) { harness in
            var device = TestDevice(harness)
            _ = try await device.register()
            _ = try await device.linkAnonymous()
            try await Task.sleep(for: .milliseconds(3200))
            #expect(try await device.setPushToken("t1").status == 401)
            let refresh = try await device.refresh()
            #expect(refresh.status == 200)
            #expect(refresh.json?["refreshToken"] == nil)
            #expect(try await device.setPushToken("t1").status == 204)
            let view = try #require(await harness.sandbox.client(device.clientId))
            #expect(view.counts.refreshes == 1 && view.counts.unauthorized == 1 && view.pushToken == "t1")
            #expect(view.contact?.kind == .anonymous)
        }
    }

    @Test("expire control: 401, then refresh 200, then push token 204")
    func forcedExpiry() async throws {
        try await SandboxHarness.withSandbox { harness in
            var device = TestDevice(harness)
            _ = try await device.register()
            _ = try await device.linkAnonymous()
            #expect(try await harness.send(.POST, "/_sandbox/contact-tokens/expire").status == 200)
            #expect(try await device.setPushToken("t1").status == 401)
            #expect(try await device.refresh().status == 200)
            #expect(try await device.setPushToken("t1").status == 204)
        }
    }

    @Test("revoked, unknown or foreign refresh tokens are 401")
    func revokedRefreshToken() async throws {
        try await SandboxHarness.withSandbox { harness in
            var device = TestDevice(harness)
            _ = try await device.register()
            _ = try await device.linkAnonymous()
            var other = TestDevice(harness)
            _ = try await other.register()
            other.refreshToken = device.refreshToken
            #expect(try await other.refresh().status == 401)

            #expect(try await harness.send(.POST, "/_sandbox/refresh-tokens/revoke").status == 200)
            #expect(try await device.refresh().status == 401)
            device.refreshToken = "made-up"
            #expect(try await device.refresh().status == 401)
            #expect(try await device.send(.POST, "/contact-token", body: "{}").status == 400)

            // Re-linking gives a fresh pair that works.
            _ = try await device.linkAnonymous()
            #expect(try await device.refresh().status == 200)
        }
    }
}
