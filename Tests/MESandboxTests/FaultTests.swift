import AsyncHTTPClient
import Foundation
import MESandbox
import Testing

/// Injected failures: status, Retry-After, latency, path filters and the special modes.
@Suite("faults")
struct FaultTests {
    @Test("two 503s with Retry-After, then success; the faults change no state")
    func statusFaultCount() async throws {
        try await SandboxHarness.withSandbox { harness in
            var device = TestDevice(harness)
            _ = try await device.register()
            _ = try await device.linkAnonymous()
            try await harness.addFault(#"{"status": 503, "count": 2, "path": "push-token", "retryAfter": "7"}"#)

            for _ in 0..<2 {
                let reply = try await device.setPushToken("t1")
                #expect(reply.status == 503)
                #expect(reply.headers.first(name: "Retry-After") == "7")
                #expect(await harness.sandbox.client(device.clientId)?.pushToken == nil)
            }
            let faults = await harness.sandbox.faults()
            #expect(faults.first?.remaining == 0 && faults.first?.hits == 2)
            #expect(try await device.setPushToken("t1").status == 204)
            let view = try #require(await harness.sandbox.client(device.clientId))
            #expect(view.pushToken == "t1" && view.counts.pushTokenPuts == 1 && view.counts.staleClientStates == 0)
            let log = await harness.sandbox.requestLog()
            #expect(log.map(\.fault) == [false, false, true, true, false])
            #expect(log.map(\.status) == [204, 200, 503, 503, 204])
        }
    }

    @Test("answers as real infrastructure gives them: a proxy's HTML page, an empty body, a JSON error with a code")
    func answerBodies() async throws {
        try await SandboxHarness.withSandbox { harness in
            var device = TestDevice(harness)
            _ = try await device.register()
            _ = try await device.linkAnonymous()
            try await harness.addFault(#"{"status": 502, "body": "html", "path": "push-token"}"#)
            try await harness.addFault(#"{"status": 503, "body": "empty", "path": "push-token"}"#)
            try await harness.addFault(#"{"status": 400, "code": "INVALID_PUSH_TOKEN", "path": "push-token"}"#)

            let html = try await device.setPushToken("t1")
            #expect(html.status == 502)
            #expect(html.headers.first(name: "Content-Type") == "text/html")
            #expect(html.body.contains("<title>502 Bad Gateway</title>"))
            let empty = try await device.setPushToken("t1")
            #expect(empty.status == 503)
            #expect(empty.body.isEmpty && empty.headers.first(name: "Content-Type") == nil)
            let coded = try await device.setPushToken("t1")
            #expect(coded.status == 400)
            #expect(coded.json?["code"] as? String == "INVALID_PUSH_TOKEN")
            #expect(await harness.sandbox.client(device.clientId)?.pushToken == nil)
            #expect(try await device.setPushToken("t1").status == 204)

            let listed = try await harness.get("/_sandbox/faults", as: [SandboxFault].self)
            #expect(listed.map(\.body) == [.html, .empty, nil])
            #expect(listed.map(\.code) == [nil, nil, "INVALID_PUSH_TOKEN"])
            // Shapes that make no sense are refused, naming the field.
            for (bad, field) in [
                (#"{"status": 502, "body": "xml"}"#, "body"),
                (#"{"mode": "close", "body": "html"}"#, "body"),
                (#"{"status": 502, "body": "html", "code": "X"}"#, "code"),
            ] {
                let reply = try await harness.send(.POST, "/_sandbox/faults", body: bad)
                #expect(reply.status == 400 && reply.json?["field"] as? String == field, "\(bad)")
            }
        }
    }

    @Test("perClient: every client meets the fault that many times, however the clients interleave")
    func perClient() async throws {
        try await SandboxHarness.withSandbox { harness in
            var first = TestDevice(harness)
            var second = TestDevice(harness)
            _ = try await first.register()
            _ = try await first.linkAnonymous()
            _ = try await second.register()
            _ = try await second.linkAnonymous()
            try await harness.addFault(#"{"status": 401, "perClient": 1, "unlimited": true, "path": "push-token"}"#)
            // The first client's retry comes before the second client's first call: it still gets through.
            #expect(try await first.setPushToken("a").status == 401)
            #expect(try await first.setPushToken("a").status == 204)
            #expect(try await second.setPushToken("b").status == 401)
            #expect(try await second.setPushToken("b").status == 204)
            let faults = await harness.sandbox.faults()
            #expect(faults.first?.hits == 2 && faults.first?.perClient == 1 && faults.first?.remaining == nil)
            let listed = try await harness.get("/_sandbox/faults", as: [SandboxFault].self)
            #expect(listed.first?.perClient == 1)
            #expect(try await harness.send(.POST, "/_sandbox/faults", body: #"{"status": 401, "perClient": 0}"#).status == 400)
        }
    }

    @Test("latency delays the answer, alone or with a status")
    func latency() async throws {
        try await SandboxHarness.withSandbox { harness in
            var device = TestDevice(harness)
            try await harness.addFault(#"{"latencyMs": 400, "path": "/client"}"#)
            let clock = ContinuousClock()
            let start = clock.now
            #expect(try await device.register().status == 204)
            #expect(clock.now - start >= .milliseconds(400))
        }
    }

    @Test("path and method filters pick the matching requests only")
    func pathFilter() async throws {
        try await SandboxHarness.withSandbox { harness in
            var device = TestDevice(harness)
            _ = try await device.register()
            _ = try await device.linkAnonymous()
            try await harness.addFault(#"{"status": 500, "path": "/client/events", "unlimited": true}"#)
            try await harness.addFault(#"{"status": 502, "path": "push-token", "method": "delete"}"#)
            #expect(try await device.setPushToken("t").status == 204)
            #expect(try await device.sendEvent().status == 500)
            #expect(try await device.sendEvent(version: "v4").status == 500)
            #expect(try await device.send(.DELETE, "/push-token").status == 502)

            let list = try await harness.get("/_sandbox/faults", as: [SandboxFault].self)
            #expect(list.map(\.remaining) == [nil, 0])
            #expect(try await harness.send(.DELETE, "/_sandbox/faults/\(list[0].id)").status == 204)
            #expect(try await device.sendEvent().status == 204)
            #expect(try await harness.send(.DELETE, "/_sandbox/faults").status == 204)
            #expect(await harness.sandbox.faults().isEmpty)
            // Inspection routes are never faulted.
            try await harness.addFault(#"{"status": 503, "unlimited": true}"#)
            #expect(try await harness.send(.GET, "/_sandbox/health").status == 200)
        }
    }

    @Test("invalid-json answers 200 with a truncated body and changes nothing")
    func invalidJSON() async throws {
        try await SandboxHarness.withSandbox { harness in
            var device = TestDevice(harness)
            _ = try await device.register()
            try await harness.addFault(#"{"mode": "invalid-json", "path": "/client/contact"}"#)
            let reply = try await device.linkAnonymous()
            #expect(reply.status == 200)
            #expect(reply.body == #"{"contactToken": "#)
            #expect(reply.json == nil)
            #expect(await harness.sandbox.client(device.clientId)?.contact == nil)
        }
    }

    @Test("no-client-state handles the request but sends no X-Client-State")
    func noClientState() async throws {
        try await SandboxHarness.withSandbox { harness in
            var device = TestDevice(harness)
            _ = try await device.register()
            try await harness.addFault(#"{"mode": "no-client-state"}"#)
            let reply = try await device.linkAnonymous()
            #expect(reply.status == 200)
            #expect(reply.clientState == nil)
            #expect(await harness.sandbox.client(device.clientId)?.contact?.kind == .anonymous)
            // The client still holds the newest state issued, so it is not counted stale.
            #expect(try await device.sendEvent().status == 204)
            #expect(await harness.sandbox.client(device.clientId)?.counts.staleClientStates == 0)
        }
    }

    @Test("close mode drops the connection without an answer")
    func closeMode() async throws {
        try await SandboxHarness.withSandbox { harness in
            var device = TestDevice(harness)
            try await harness.addFault(#"{"mode": "close"}"#)
            await #expect(throws: HTTPClientError.remoteConnectionClosed) { _ = try await device.register() }
            #expect(try await device.register().status == 204)
            #expect(await harness.sandbox.requestLog().map(\.status) == [0, 204])
        }
    }

    @Test("bad fault definitions are refused")
    func badFaults() async throws {
        try await SandboxHarness.withSandbox { harness async throws in
            #expect(try await harness.send(.POST, "/_sandbox/faults", body: "{}").status == 400)
            #expect(try await harness.send(.POST, "/_sandbox/faults", body: #"{"status": 503, "count": 0}"#).status == 400)
            #expect(try await harness.send(.POST, "/_sandbox/faults", body: #"{"mode": "explode"}"#).status == 400)
            #expect(try await harness.send(.DELETE, "/_sandbox/faults/f99").status == 404)
        }
    }
}
