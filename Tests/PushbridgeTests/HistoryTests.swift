import Foundation
import Testing

/// `GET /v1/apps/{code}/devices/{deviceId}/history`: the real server and sandbox over loopback, on SQLite and on
/// PostgreSQL (when `PUSHBRIDGE_TEST_POSTGRES_URL` names a server).
@Suite("Device history", .serialized)
struct HistoryTests {
    static func entries(_ bed: TestBed, _ id: String, limit: Int? = nil) async throws -> [[String: Any]] {
        let answer = try await bed.request("GET", bed.devicePath(id) + "/history" + (limit.map { "?limit=\($0)" } ?? ""))
        #expect(answer.status == 200, "\(answer.status) \(String(decoding: answer.body, as: UTF8.self))")
        return answer.json["entries"] as? [[String: Any]] ?? []
    }

    /// Polls the history until `condition` holds (entries are written in batches, a fifth of a second apart).
    static func waitForEntries(_ bed: TestBed, _ id: String, _ condition: ([[String: Any]]) -> Bool) async throws -> [[String: Any]] {
        var last: [[String: Any]] = []
        for _ in 0..<200 {
            last = try await entries(bed, id)
            if condition(last) { return last }
            try await Task.sleep(for: .milliseconds(50))
        }
        Issue.record("history of \(id) never matched; last: \(last)")
        return last
    }

    @Test("intents with their request ids (deduplicated ones too), ME calls, state changes, newest first, no token", arguments: InvariantRegressionTests.stores)
    func whatHappened(store: String) async throws {
        try await InvariantRegressionTests.withBed(store) { bed in
            let token = Tokens.fcm()
            _ = try await bed.request("PUT", bed.devicePath("h"), json: ["provider": "fcm", "token": token], headers: ["X-Request-Id": "req-first"])
            try await bed.waitForState("h", "registered")
            let again = try await bed.request("PUT", bed.devicePath("h") + "/push-token", json: ["provider": "fcm", "token": token], headers: ["X-Request-Id": "req-again"])
            #expect(again.status == 200)
            let entries = try await Self.waitForEntries(bed, "h") { $0.contains { ($0["requestId"] as? String) == "req-again" } }
            // Newest first: the deduplicated PUT, then the state change, the calls, the start.
            #expect(entries.first?["kind"] as? String == "intent")
            #expect(entries.first?["intent"] as? String == "push-token")
            #expect(entries.first?["deduplicated"] as? Bool == true)
            let start = try #require(entries.first { ($0["requestId"] as? String) == "req-first" })
            #expect(start["intent"] as? String == "start")
            #expect(start["deduplicated"] as? Bool == false)
            let calls = entries.filter { ($0["kind"] as? String) == "call" }
            #expect(Set(calls.compactMap { $0["endpoint"] as? String }).isSuperset(of: ["client", "push_token_put"]))
            #expect(calls.allSatisfy { ($0["status"] as? Int).map { (200..<300).contains($0) } == true && ($0["attempt"] as? Int) == 1 })
            #expect(entries.contains { ($0["kind"] as? String) == "state" && ($0["to"] as? String) == "registered" })
            let ats = entries.compactMap { $0["at"] as? String }
            #expect(ats == ats.sorted(by: >), "newest first")
            let text = String(decoding: try await bed.request("GET", bed.devicePath("h") + "/history").body, as: UTF8.self)
            #expect(!text.contains(token))
            // limit
            #expect(try await Self.entries(bed, "h", limit: 2).count == 2)
        }
    }

    @Test("a failed call shows its status and attempt; bad limits are 422 naming limit; unknown devices 404; a forgotten device's history goes with it", arguments: InvariantRegressionTests.stores)
    func failuresAndBadInput(store: String) async throws {
        try await InvariantRegressionTests.withBed(store) { bed in
            try await bed.addFault(["mode": "status", "status": 503, "method": "PUT", "path": "/push-token", "count": 2])
            _ = try await bed.request("PUT", bed.devicePath("f"), json: ["provider": "fcm", "token": Tokens.fcm()])
            try await bed.waitForState("f", "registered")
            let entries = try await Self.waitForEntries(bed, "f") { list in
                list.filter { ($0["endpoint"] as? String) == "push_token_put" }.count == 3
            }
            let puts = entries.filter { ($0["endpoint"] as? String) == "push_token_put" }.reversed().map { ($0["status"] as? Int, $0["attempt"] as? Int) }
            #expect(puts.map(\.0) == [503, 503, 204])
            #expect(puts.map(\.1) == [1, 2, 3])
            for bad in ["0", "501", "x"] {
                let answer = try await bed.request("GET", bed.devicePath("f") + "/history?limit=\(bad)")
                #expect(answer.status == 422)
                #expect(answer.json["field"] as? String == "limit")
            }
            #expect(try await bed.request("GET", bed.devicePath("nobody") + "/history").status == 404)
            #expect(try await bed.request("DELETE", bed.devicePath("f")).status == 202)
            try await bed.waitFor("f") { ($0["status"] as? Int) == 404 }
            #expect(try await bed.request("GET", bed.devicePath("f") + "/history").status == 404)
        }
    }

    @Test("a dead-token report and the webhook attempts it causes (a 503, then the 2xx) are in the history, the state change above the call that made it", arguments: InvariantRegressionTests.stores)
    func invalidationAndWebhooks(store: String) async throws {
        let receiver = try await WebhookReceiver()
        defer { Task { await receiver.stop() } }
        try await WebhookTests.withBed(store, receiver: receiver, events: [.unregistered]) { bed in
            let token = Tokens.fcm()
            _ = try await bed.request("PUT", bed.devicePath("w"), json: ["provider": "fcm", "token": token])
            try await bed.waitForState("w", "registered")
            receiver.answer(next: [.status(503, retryAfter: nil)])
            let report = try await bed.request(
                "POST", "/v1/apps/\(TestBed.app)/tokens/invalidate", json: ["provider": "fcm", "token": token], headers: ["X-Request-Id": "req-dead"])
            #expect(report.status == 202)
            try await bed.waitForState("w", "unregistered")
            let entries = try await Self.waitForEntries(bed, "w") { list in
                list.contains { ($0["kind"] as? String) == "webhook" && ($0["status"] as? Int) == 204 }
            }
            let dead = try #require(entries.first { ($0["requestId"] as? String) == "req-dead" })
            #expect(dead["intent"] as? String == "invalidate")
            let hooks = entries.filter { ($0["kind"] as? String) == "webhook" }.reversed()
            #expect(hooks.map { $0["event"] as? String } == ["device.unregistered", "device.unregistered"])
            #expect(hooks.map { $0["status"] as? Int } == [503, 204])
            #expect(hooks.map { $0["attempt"] as? Int } == [1, 2])
            // Newest first by time: the change to unregistered sits above the DELETE push-token call whose answer made it.
            let kinds = entries.map { e -> String in
                switch e["kind"] as? String {
                case "state": "state:\(e["to"] as? String ?? "")"
                case "call": "call:\(e["endpoint"] as? String ?? "")"
                default: e["kind"] as? String ?? ""
                }
            }
            let removed = try #require(kinds.firstIndex(of: "state:unregistered"))
            let call = try #require(kinds.firstIndex(of: "call:push_token_delete"))
            #expect(removed < call, "\(kinds)")
            let text = String(decoding: try await bed.request("GET", bed.devicePath("w") + "/history?limit=500").body, as: UTF8.self)
            #expect(!text.contains(token))
        }
    }
}
