import Foundation
import Storage
import Testing
import Workflow

@Suite("Operations: metrics, request ids, stats, readiness, shutdown", .serialized)
struct OperationsTests {
    func metric(_ text: String, _ name: String, _ labels: [String] = []) -> Double? {
        for line in text.split(separator: "\n") where line.hasPrefix(name) && !line.hasPrefix("#") {
            let s = String(line)
            if labels.allSatisfy({ s.contains($0) }), let v = s.split(separator: " ").last.flatMap({ Double($0) }) { return v }
        }
        return nil
    }

    @Test("/metrics names the API, ME, queue and device metrics, and they move")
    func metricsMove() async throws {
        try await withTestBed { bed in
            let before = String(decoding: try await bed.request("GET", "/metrics").body, as: UTF8.self)
            // Every family is there from the start, at zero.
            #expect(metric(before, "pushbridge_me_calls_total", [#"endpoint="push_token_put""#, #"outcome="success""#]) == 0)
            let token = Tokens.fcm()
            _ = try await bed.request("PUT", bed.devicePath("m1"), json: ["provider": "fcm", "token": token])
            try await bed.waitForState("m1", "registered")
            _ = try await bed.request("PUT", bed.devicePath("m1") + "/push-token", json: ["provider": "fcm", "token": token])
            let scrape = try await bed.request("GET", "/metrics")
            #expect(scrape.status == 200)
            #expect(scrape.contentType.hasPrefix("text/plain"))
            let text = String(decoding: scrape.body, as: UTF8.self)
            #expect(metric(text, "pushbridge_me_calls_total", [#"endpoint="push_token_put""#, #"outcome="success""#]) == 1)
            #expect(metric(text, "pushbridge_me_calls_total", [#"endpoint="client""#, #"outcome="success""#]) == 1)
            #expect(metric(text, "pushbridge_me_calls_total", [#"endpoint="push_token_put""#, #"outcome="deduplicated""#]) == 1)
            #expect(metric(text, "pushbridge_me_call_duration_seconds_count", [#"endpoint="events""#]) == 1)
            #expect(metric(text, "pushbridge_devices", [#"state="registered""#, #"app="EMS12-34567""#]) == 1)
            #expect(metric(text, "pushbridge_queued_intents", [#"app="EMS12-34567""#]) == 0)
            #expect(metric(text, "pushbridge_oldest_due_intent_age_seconds") != nil)
            #expect(metric(text, "pushbridge_http_requests_total", [#"route="/v1/apps/{code}/devices/{deviceId}""#, #"method="PUT""#, #"status="202""#]) == 1)
            // Labels never hold a device id or a token.
            #expect(!text.contains("m1\""))
            #expect(!text.contains(token))

            await bed.sandbox.expireContactTokens()
            let rotated = Tokens.fcm()
            _ = try await bed.request("PUT", bed.devicePath("m1") + "/push-token", json: ["provider": "fcm", "token": rotated])
            try await bed.waitForState("m1", "registered")
            _ = try await bed.request("PUT", bed.devicePath("m2"), json: ["provider": "fcm", "token": rotated])
            try await bed.waitForState("m2", "registered")
            try await bed.waitForState("m1", "unregistered")
            let after = String(decoding: try await bed.request("GET", "/metrics").body, as: UTF8.self)
            #expect(metric(after, "pushbridge_contact_token_refreshes_total") == 1)
            #expect(metric(after, "pushbridge_token_moves_total") == 1)
            #expect(metric(after, "pushbridge_me_calls_total", [#"endpoint="push_token_put""#, #"outcome="unauthorized""#]) == 1)
        }
    }

    @Test("a new device costs the engine one load and five writes; the last intent's pop gives the device back")
    func storageOperationsPerDevice() async throws {
        try await withTestBed { bed in
            _ = try await bed.request("PUT", bed.devicePath("s1"), json: ["provider": "fcm", "token": Tokens.fcm()])
            try await bed.waitForState("s1", "registered")
            // The metric is recorded just after the commit that made the device registered.
            var text = ""
            for _ in 0..<250 {
                text = String(decoding: try await bed.request("GET", "/metrics").body, as: UTF8.self)
                if (metric(text, "pushbridge_store_operation_duration_seconds_count", [#"operation="commit""#]) ?? 0) > 0 { break }
                try await Task.sleep(for: .milliseconds(20))
            }
            // Four ME calls (client, anonymous contact, start event, push token), each committed with the
            // read of the next step; the pop of the done intent is the turn's last write and releases the lease.
            #expect(metric(text, "pushbridge_me_call_duration_seconds_count", [#"endpoint="push_token_put""#]) == 1)
            #expect(metric(text, "pushbridge_store_operation_duration_seconds_count", [#"operation="load""#]) == 1)
            #expect(metric(text, "pushbridge_store_operation_duration_seconds_count", [#"operation="commit_and_load""#]) == 4)
            #expect(metric(text, "pushbridge_store_operation_duration_seconds_count", [#"operation="commit""#]) == 1)
            #expect(metric(text, "pushbridge_store_operation_duration_seconds_count", [#"operation="release""#]) == 0)
            #expect((metric(text, "pushbridge_store_operation_duration_seconds_count", [#"operation="claim""#]) ?? 0) > 0)
        }
    }

    @Test("X-Request-Id is taken when given, made when not, and echoed")
    func requestId() async throws {
        try await withTestBed { bed in
            let given = try await bed.request("GET", "/health", headers: ["X-Request-Id": "abc-123"])
            #expect(given.headers["x-request-id"] == "abc-123")
            let made = try await bed.request("GET", "/v1/nope")
            #expect((made.headers["x-request-id"]?.count ?? 0) >= 32)
        }
    }

    @Test("GET /v1/apps/{code}/stats counts devices by state and provider and lists the newest failures")
    func stats() async throws {
        try await withTestBed { bed in
            _ = try await bed.request("PUT", bed.devicePath("ok"), json: ["provider": "fcm", "token": Tokens.fcm()])
            try await bed.waitForState("ok", "registered")
            try await bed.addFault(["status": 400, "count": 1, "path": "push-token"])
            _ = try await bed.request("PUT", bed.devicePath("bad"), json: ["provider": "apns", "token": Tokens.apnsHex()])
            try await bed.waitFor("bad") { ($0["state"] as? String) == "failed" }
            let stats = try await bed.request("GET", "/v1/apps/EMS12-34567/stats")
            #expect(stats.status == 200)
            #expect(stats.json["devices"] as? Int == 2)
            #expect((stats.json["byState"] as? [String: Int]) == ["registered": 1, "failed": 1])
            #expect((stats.json["byProvider"] as? [String: Int]) == ["fcm": 1, "apns": 1])
            let failures = try #require(stats.json["recentFailures"] as? [[String: Any]])
            #expect(failures.count == 1)
            #expect(failures.first?["deviceId"] as? String == "bad")
            #expect(failures.first?["step"] as? String == "push-token")
            #expect(failures.first?["status"] as? Int == 400)
        }
    }

    @Test("/ready is 503 while the queue is at its bound")
    func readyAtBound() async throws {
        try await withTestBed(configure: { $0.limits.maxQueuedIntents = 2 }) { bed in
            #expect(try await bed.request("GET", "/ready").status == 200)
            try await bed.addFault(["status": 503, "unlimited": true])
            _ = try await bed.request("PUT", bed.devicePath("a"), json: ["provider": "fcm", "token": Tokens.fcm()])
            _ = try await bed.request("PUT", bed.devicePath("b"), json: ["provider": "fcm", "token": Tokens.fcm()])
            let ready = try await bed.request("GET", "/ready")
            #expect(ready.status == 503)
            #expect((ready.json["checks"] as? [String: String])?["queue"] == "at its bound")
        }
    }

    @Test("/ready is 503 naming storage when storage fails; /health stays 200")
    func readyWithoutStorage() async throws {
        try await withTestBed { bed in
            #expect(try await bed.request("GET", "/ready").status == 200)
            try await #require(bed.server).store.close()
            let ready = try await bed.request("GET", "/ready")
            #expect(ready.status == 503)
            #expect((ready.json["checks"] as? [String: String])?["storage"] == "failing (ready)")
            #expect(try await bed.request("GET", "/health").status == 200)
        }
    }

    @Test("graceful shutdown: /ready and writes answer 503 while draining; what was queued survives the restart")
    func gracefulShutdown() async throws {
        try await withTestBed(configure: { $0.shutdownDrainSeconds = 1.5 }) { bed in
            try await bed.addFault(["status": 503, "unlimited": true])
            for i in 0..<20 {
                #expect(try await bed.request("PUT", bed.devicePath("s\(i)"), json: ["provider": "fcm", "token": Tokens.fcm()]).status == 202)
            }
            let server = try #require(bed.server)
            let stopping = Task { await server.shutdown() }
            try await Task.sleep(for: .milliseconds(300))
            let ready = try await bed.request("GET", "/ready")
            #expect(ready.status == 503)
            #expect((ready.json["checks"] as? [String: String])?["shutdown"] == "draining")
            let write = try await bed.request("PUT", bed.devicePath("late"), json: ["provider": "fcm", "token": Tokens.fcm()])
            #expect(write.status == 503)
            #expect(write.contentType == "application/problem+json")
            await stopping.value
            try await bed.stopBridge()
            try await bed.startBridge()
            try await bed.clearFaults()
            for i in 0..<20 { try await bed.waitForState("s\(i)", "registered") }
            #expect(try await bed.request("GET", bed.devicePath("late")).status == 404)
        }
    }
}
