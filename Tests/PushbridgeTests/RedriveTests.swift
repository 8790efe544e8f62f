import Foundation
import Testing

/// Re-drive (`POST /v1/apps/{code}/devices/retry`) and the rate limit toward ME (`apps[].meRequestsPerSecond`): the real
/// server and the real sandbox over loopback, on SQLite and on PostgreSQL (when `PUSHBRIDGE_TEST_POSTGRES_URL` names a
/// server). The sandbox's request log is the oracle for the rate.
@Suite("Re-drive and the rate limit", .serialized)
struct RedriveTests {
    static let path = "/v1/apps/\(TestBed.app)/devices/retry"

    /// The most requests the sandbox saw in any one second.
    static func mostInAnySecond(_ times: [Date]) -> Int {
        let sorted = times.sorted()
        var most = 0
        var first = 0
        for (i, t) in sorted.enumerated() {
            while t.timeIntervalSince(sorted[first]) >= 1 { first += 1 }
            most = max(most, i - first + 1)
        }
        return most
    }

    @Test("bad input is 422 naming the field and changes nothing; without failed devices the answer is 0", arguments: InvariantRegressionTests.stores)
    func badInput(store: String) async throws {
        try await InvariantRegressionTests.withBed(store) { bed in
            for (body, field) in [
                ([:], "state"), (["state": "registered"], "state"), (["state": 7], "state"),
                (["state": "failed", "step": "push"], "step"), (["state": "failed", "step": 1], "step"),
            ] as [([String: Any], String)] {
                let answer = try await bed.request("POST", Self.path, json: body)
                #expect(answer.status == 422, "\(body): \(answer.status)")
                #expect(answer.json["field"] as? String == field, "\(body): \(answer.json)")
            }
            let none = try await bed.request("POST", Self.path, json: ["state": "failed"])
            #expect(none.status == 202 && none.json["devices"] as? Int == 0, "\(none.status) \(none.json)")
            #expect(try await bed.request("POST", "/v1/apps/EMS00-00000/devices/retry", json: ["state": "failed"]).status == 404)
        }
    }

    @Test("failed devices retried at meRequestsPerSecond: never more per second at ME, every one ends registered, other steps' failures stay", arguments: InvariantRegressionTests.stores)
    func redriveAtTheRate(store: String) async throws {
        let rate = 40
        try await InvariantRegressionTests.withBed(store, configure: { c in c.apps[0].meRequestsPerSecond = rate }) { bed in
            // 60 devices whose push token ME refuses (400: failed at push-token), and one that fails at its contact link.
            try await bed.addFault(["status": 400, "method": "PUT", "path": "/push-token", "unlimited": true])
            let ids = (0..<60).map { "r\($0)" }
            for id in ids { _ = try await bed.request("PUT", bed.devicePath(id) + "/push-token", json: ["provider": "fcm", "token": Tokens.fcm()]) }
            for id in ids { try await bed.waitFor(id, timeout: .seconds(60)) { $0["state"] as? String == "failed" } }
            try await bed.clearFaults()
            try await bed.addFault(["status": 400, "method": "POST", "path": "/client/contact", "unlimited": true])
            _ = try await bed.request("PUT", bed.devicePath("ev"), json: ["provider": "fcm", "token": Tokens.fcm()])
            let failedAtContact = try await bed.waitFor("ev", timeout: .seconds(60)) { $0["state"] as? String == "failed" }
            #expect((failedAtContact["lastError"] as? [String: Any])?["step"] as? String == "contact")

            // Only the push-token failures: 60 devices, each retried with a fresh budget, and all registered.
            let answer = try await bed.request("POST", Self.path, json: ["state": "failed", "step": "push-token"])
            #expect(answer.status == 202 && answer.json["devices"] as? Int == 60, "\(answer.status) \(answer.json)")
            for id in ids { try await bed.waitForState(id, "registered", timeout: .seconds(60)) }
            #expect(try await bed.status("ev")["state"] as? String == "failed")

            // The sandbox saw about the rate in any second, over the whole test (set-up included); without the limit it
            // sees 180 calls within a fraction of a second. The bound holds where the bridge starts requests; a loaded
            // machine (the whole suite on two cores, CI beside it) can delay some on the way and bunch them at the
            // sandbox: a fifth more was once exceeded by one call (49 at 40 a second), so this allows half more. The
            // exact bound at the sandbox is checked on a quiet machine by scripts/redrive-test.py (10,000 devices at
            // 200 a second).
            let log = await bed.sandbox.requestLog()
            #expect(log.count > 200)
            #expect(Self.mostInAnySecond(log.map(\.at)) <= rate + rate / 2)
            // The wait is measured.
            let metrics = String(decoding: try await bed.request("GET", "/metrics").body, as: UTF8.self)
            #expect(metrics.contains("pushbridge_me_rate_limit_wait_seconds_count{app=\"\(TestBed.app)\"}"))

            // Any step: the contact failure goes too once ME takes links again.
            try await bed.clearFaults()
            let all = try await bed.request("POST", Self.path, json: ["state": "failed"])
            #expect(all.json["devices"] as? Int == 1)
            try await bed.waitForState("ev", "registered", timeout: .seconds(30))
        }
    }

    @Test("a turn further than a quarter of the lease is not waited for: the device is given back, comes back then, and registers; the rate holds")
    func turnsBeyondTheLease() async throws {
        let rate = 2
        try await InvariantRegressionTests.withBed("sqlite", configure: { c in
            c.apps[0].meRequestsPerSecond = rate
            c.emarsys.leaseSeconds = 4  // a horizon of 1 s: most of these calls' turns are further away
        }) { bed in
            let ids = (0..<6).map { "q\($0)" }
            for id in ids { _ = try await bed.request("PUT", bed.devicePath(id) + "/push-token", json: ["provider": "fcm", "token": Tokens.fcm()]) }
            for id in ids { try await bed.waitForState(id, "registered", timeout: .seconds(60)) }
            let log = await bed.sandbox.requestLog()
            #expect(log.count == ids.count * 3)
            // Without the limit all 18 calls come within a second; with it, pairs 1.1 s apart (a loaded machine may
            // delay one pair into the next one's second at the sandbox).
            #expect(Self.mostInAnySecond(log.map(\.at)) <= 2 * rate)
        }
    }

    @Test("a 429 from ME slows the whole app down for its Retry-After")
    func tooManyRequests() async throws {
        try await InvariantRegressionTests.withBed("sqlite", configure: { c in c.apps[0].meRequestsPerSecond = 1000 }) { bed in
            try await bed.addFault(["status": 429, "retryAfter": "2", "method": "PUT", "path": "/push-token", "count": 1])
            _ = try await bed.request("PUT", bed.devicePath("a") + "/push-token", json: ["provider": "fcm", "token": Tokens.fcm()])
            var refused: Date?
            let deadline = Date().addingTimeInterval(20)
            while refused == nil, Date() < deadline {
                refused = await bed.sandbox.requestLog().first { $0.status == 429 }?.at
                try await Task.sleep(for: .milliseconds(10))
            }
            let pausedFrom = try #require(refused)
            // The engine has heard it once a's status shows it (the pause is set before that commit): only then do two
            // more devices of the app start, whose calls (nor a's) must not reach ME for two seconds.
            _ = try await bed.waitFor("a") { ($0["lastError"] as? [String: Any])?["status"] as? Int == 429 }
            for id in ["b", "c"] { _ = try await bed.request("PUT", bed.devicePath(id) + "/push-token", json: ["provider": "fcm", "token": Tokens.fcm()]) }
            for id in ["a", "b", "c"] { try await bed.waitForState(id, "registered", timeout: .seconds(30)) }
            let after = await bed.sandbox.requestLog().filter { $0.at > pausedFrom }
            #expect(after.count >= 7)
            // The engine hears the 429 a moment after the sandbox sent it: 1.9 s of the 2 s are checked.
            let early = after.filter { $0.at < pausedFrom.addingTimeInterval(1.9) }
            #expect(early.isEmpty, "\(early.map(\.path))")
        }
    }
}
