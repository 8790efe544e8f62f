import AsyncHTTPClient
import Foundation
import MESandbox
import NIOCore
import NIOHTTP1
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
            var request = HTTPClientRequest(url: harness.baseURL + "/v3/apps/EMS12-34567/client")
            request.method = .POST
            request.headers.add(name: "X-Client-Id", value: device.clientId)
            request.headers.add(name: "X-Request-Order", value: String(device.nextOrder))
            request.body = .bytes(ByteBuffer(string: TestDevice.deviceInfo))
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
            #expect(response.status.code == 502)
            await #expect(throws: HTTPParserError.invalidEOFState) { _ = try await response.body.collect(upTo: 1 << 20) }
            #expect(await harness.sandbox.requestLog().last?.status == 0)
        }
    }
}
