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
            // The refused origin is logged too: that is the one a developer looks for.
            #expect(log.map(\.origin) == ["https://shop.example", "https://evil.example", "https://shop.example"])
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

    @Test("standalone: a path that leaves the known ones part way, or stops on the way, is answered and logged")
    func unroutedStandalone() async throws {
        try await SandboxHarness.withSandbox { harness in
            let paths = [
                "/v3/apps/EMS12-34567/inbox", "/v3/apps/EMS12-34567", "/v3/apps/EMS12-34567/client/push-token/extra",
                "/v4/apps/EMS12-34567/client/foo", "/v3/domains", "/_sandbox/nope", "/nothing/here",
            ]
            for path in paths {
                let reply = try await harness.send(.GET, path, headers: [("Origin", "https://shop.example")])
                #expect(reply.status == 404, "\(path)")
                #expect((reply.json?["error"] as? String)?.contains(path) == true, "\(path): \(reply.body)")
                // Outside the inspection routes a page can read the answer.
                let cors = reply.headers.first(name: "Access-Control-Allow-Origin")
                #expect(path.hasPrefix("/_sandbox") ? cors == nil : cors == "*", "\(path)")
            }
            let log = await harness.sandbox.requestLog()
            #expect(log.map(\.path) == paths)
            #expect(log.allSatisfy { $0.status == 404 && $0.route == nil })
            // The inspection and control routes are not open to pages.
            let preflight = try await harness.send(.OPTIONS, "/_sandbox/requests", headers: Self.preflight, userAgent: nil, contentType: nil)
            #expect(preflight.status == 403)
            #expect(preflight.headers.first(name: "Access-Control-Allow-Origin") == nil)
            let inspection = try await harness.send(.GET, "/_sandbox/requests", headers: [("Origin", "https://shop.example")])
            #expect(inspection.status == 200 && inspection.headers.first(name: "Access-Control-Allow-Origin") == nil)
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
