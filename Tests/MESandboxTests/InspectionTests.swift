import Foundation
import MESandbox
import Testing

/// The request log, reset, health, and mounting below a prefix with `addRoutes`.
@Suite("inspection")
struct InspectionTests {
    @Test("request log filters by client and limits to the newest entries")
    func requestLog() async throws {
        try await SandboxHarness.withSandbox { harness in
            var first = TestDevice(harness)
            var second = TestDevice(harness)
            _ = try await first.register()
            _ = try await second.register()
            _ = try await first.linkAnonymous()

            let all = try await harness.get("/_sandbox/requests", as: [SandboxRequestRecord].self)
            #expect(all.map(\.seq) == [1, 2, 3])
            let mine = try await harness.get("/_sandbox/requests?clientId=\(first.clientId)", as: [SandboxRequestRecord].self)
            #expect(mine.map(\.path) == ["/v3/apps/EMS12-34567/client", "/v3/apps/EMS12-34567/client/contact"])
            let newest = try await harness.get("/_sandbox/requests?limit=1", as: [SandboxRequestRecord].self)
            #expect(newest.map(\.seq) == [3])
            #expect(await harness.sandbox.requestLog().count == 3)

            #expect(try await harness.send(.POST, "/_sandbox/reset").status == 204)
            #expect(await harness.sandbox.requestLog().isEmpty)
            #expect(await harness.sandbox.client(first.clientId) == nil)
        }
    }

    @Test("request log keeps only maxRequestLog entries")
    func boundedLog() async throws {
        try await SandboxHarness.withSandbox(configuration: .init(maxRequestLog: 2)) { harness in
            var device = TestDevice(harness)
            for _ in 0..<3 { _ = try await device.register() }
            #expect(await harness.sandbox.requestLog().map(\.seq) == [2, 3])
        }
    }

    @Test("addRoutes mounts everything below a prefix on a BasicRequestContext router")
    func mountedBelowPrefix() async throws {
        try await SandboxHarness.withMountedSandbox(prefix: "/sandbox") { harness in
            #expect(try await harness.send(.GET, "/_sandbox/health").status == 200)
            var device = TestDevice(harness)
            #expect(try await device.register().status == 204)
            #expect(try await device.linkAnonymous().status == 200)
            try await harness.addFault(#"{"status": 503, "path": "/client/events"}"#)
            #expect(try await device.sendEvent().status == 503)
            #expect(await harness.sandbox.requestLog().last?.path == "/v3/apps/EMS12-34567/client/events")

            // Without access to the connection, "close" answers a 502 head and then breaks the body.
            try await harness.addFault(#"{"mode": "close"}"#)
            do {
                let reply = try await device.sendEvent()
                #expect(reply.status == 502)
                Issue.record("expected the body to break")
            } catch {
                // the client saw the connection end mid-answer
            }
        }
    }
}
