import Foundation
import MESandbox
import Testing

/// What a browser needs (CORS), and what a developer sees of requests no ME route serves.
@Suite("browsers and unrouted requests")
struct BrowserTests {
    static let preflight: [(String, String)] = [
        ("Origin", "https://shop.example"), ("Access-Control-Request-Method", "POST"),
        ("Access-Control-Request-Headers", "content-type,x-client-id,x-client-state,x-contact-token,x-request-order"),
    ]

    @Test("with a list of origins: a listed origin gets CORS, preflight and answer; another gets none; both are logged")
    func allowedOrigins() async throws {
        try await SandboxHarness.withSandbox(configuration: .init(allowedOrigins: ["https://shop.example"])) { harness in
            let allowed = try await harness.send(.OPTIONS, "/v3/apps/EMS12-34567/client", headers: Self.preflight, userAgent: nil, contentType: nil)
            #expect(allowed.status == 204)
            #expect(allowed.headers.first(name: "Access-Control-Allow-Origin") == "https://shop.example")
            #expect(allowed.headers.first(name: "Access-Control-Allow-Methods")?.contains("PUT") == true)
            #expect(allowed.headers.first(name: "Access-Control-Allow-Headers")?.lowercased().contains("x-client-state") == true)

            let other = Self.preflight.map { $0.0 == "Origin" ? ("Origin", "https://evil.example") : $0 }
            let refused = try await harness.send(.OPTIONS, "/v3/apps/EMS12-34567/client", headers: other, userAgent: nil, contentType: nil)
            #expect(refused.status == 403)
            #expect(refused.headers.first(name: "Access-Control-Allow-Origin") == nil)

            // The request itself: the origin allowed, and the client state readable by the page.
            var device = TestDevice(harness)
            let registered = try await device.send(.POST, "", body: TestDevice.deviceInfo, extraHeaders: [("Origin", "https://shop.example")])
            #expect(registered.status == 204)
            #expect(registered.headers.first(name: "Access-Control-Allow-Origin") == "https://shop.example")
            #expect(registered.headers.first(name: "Access-Control-Expose-Headers")?.contains("X-Client-State") == true)

            let log = await harness.sandbox.requestLog()
            #expect(log.map(\.method) == ["OPTIONS", "OPTIONS", "POST"])
            #expect(log.map(\.status) == [204, 403, 204])
            #expect(log.map(\.route) == [nil, nil, "client"])
            #expect(log.first?.origin == "https://shop.example")
        }
    }

    @Test("without origins: no CORS headers, a preflight is a logged 403")
    func noCORS() async throws {
        try await SandboxHarness.withSandbox(configuration: .init(allowedOrigins: [])) { harness in
            let reply = try await harness.send(.OPTIONS, "/v3/apps/EMS12-34567/client", headers: Self.preflight, userAgent: nil, contentType: nil)
            #expect(reply.status == 403)
            #expect(reply.headers.first(name: "Access-Control-Allow-Origin") == nil)
            #expect(await harness.sandbox.requestLog().map(\.status) == [403])
        }
    }

    @Test("a request no route serves gets a JSON 404 naming it, and is logged; the embedded sandbox too")
    func unrouted() async throws {
        try await SandboxHarness.withMountedSandbox(prefix: "/sandbox") { harness in
            let wrongMethod = try await harness.send(.GET, "/v3/apps/EMS12-34567/client", headers: [("X-Client-Id", "c1")])
            #expect(wrongMethod.status == 404)
            #expect((wrongMethod.json?["error"] as? String)?.contains("GET /v3/apps/EMS12-34567/client") == true)
            let unknown = try await harness.send(.POST, "/v2/whatever/deep/path", body: "{}")
            #expect(unknown.status == 404 && unknown.json?["status"] as? Int == 404)
            let preflight = try await harness.send(.OPTIONS, "/v3/domains/EMS12-34567/client/push-token", headers: Self.preflight, userAgent: nil, contentType: nil)
            #expect(preflight.status == 204)
            #expect(preflight.headers.first(name: "Access-Control-Allow-Origin") == "*")
            // The inspection routes still answer, and are not logged as ME requests.
            let log = try await harness.get("/_sandbox/requests", as: [SandboxRequestRecord].self)
            #expect(log.map { "\($0.method) \($0.path) \($0.status)" } == [
                "GET /v3/apps/EMS12-34567/client 404", "POST /v2/whatever/deep/path 404",
                "OPTIONS /v3/domains/EMS12-34567/client/push-token 204",
            ])
            #expect(log.first?.clientId == "c1")
            #expect(log.allSatisfy { $0.route == nil })
        }
    }
}
