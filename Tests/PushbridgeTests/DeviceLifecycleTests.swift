import Foundation
import Testing

@Suite("Device lifecycle", .serialized)
struct DeviceLifecycleTests {
    @Test("a token that arrives for another device moves: removed from the old one first, which ends unregistered")
    func tokenMove() async throws {
        try await withTestBed { bed in
            let token = Tokens.fcm()
            _ = try await bed.request("PUT", bed.devicePath("old"), json: ["provider": "fcm", "token": token])
            try await bed.waitForState("old", "registered")
            let oldClient = try await bed.clientId(of: "old")
            let moved = try await bed.request("PUT", bed.devicePath("new"), json: ["provider": "fcm", "token": token])
            #expect(moved.status == 202)
            try await bed.waitForState("new", "registered")
            let old = try await bed.waitForState("old", "unregistered")
            #expect(old["tokenHash"] is NSNull)
            let newClient = try await bed.clientId(of: "new")
            let oldView = try #require(await bed.sandbox.client(oldClient))
            let newView = try #require(await bed.sandbox.client(newClient))
            #expect(oldView.pushToken == nil)
            #expect(oldView.counts.pushTokenDeletes == 1)
            #expect(newView.pushToken == token)
            // The old device's DELETE reached ME before the new device's PUT.
            let log = await bed.sandbox.requestLog()
            let delete = try #require(log.firstIndex { $0.clientId == oldClient && $0.method == "DELETE" })
            let put = try #require(log.firstIndex { $0.clientId == newClient && $0.method == "PUT" })
            #expect(delete < put)
        }
    }

    @Test("removing a token deletes it at ME; removing it again is deduplicated")
    func removeToken() async throws {
        try await withTestBed { bed in
            _ = try await bed.request("PUT", bed.devicePath("d1"), json: ["provider": "fcm", "token": Tokens.fcm()])
            try await bed.waitForState("d1", "registered")
            #expect(try await bed.request("DELETE", bed.devicePath("d1") + "/push-token").status == 202)
            let status = try await bed.waitForState("d1", "unregistered")
            #expect(status["tokenHash"] is NSNull)
            let again = try await bed.request("DELETE", bed.devicePath("d1") + "/push-token")
            #expect(again.status == 200 && again.json["deduplicated"] as? Bool == true)
            let client = try #require(await bed.sandbox.client(try await bed.clientId(of: "d1")))
            #expect(client.pushToken == nil && client.counts.pushTokenDeletes == 1)
        }
    }

    @Test("DELETE device removes the token at ME, then the device is gone")
    func forget() async throws {
        try await withTestBed { bed in
            _ = try await bed.request("PUT", bed.devicePath("d1"), json: ["provider": "fcm", "token": Tokens.fcm()])
            try await bed.waitForState("d1", "registered")
            let clientId = try await bed.clientId(of: "d1")
            let deleted = try await bed.request("DELETE", bed.devicePath("d1"))
            #expect(deleted.status == 202)
            var gone = false
            for _ in 0..<400 where !gone {
                gone = try await bed.request("GET", bed.devicePath("d1")).status == 404
                if !gone { try await Task.sleep(for: .milliseconds(25)) }
            }
            #expect(gone)
            let client = try #require(await bed.sandbox.client(clientId))
            #expect(client.pushToken == nil)
        }
    }

    @Test("a start with another client id removes the old client's token and registers under the new one")
    func clientIdChange() async throws {
        try await withTestBed { bed in
            let token = Tokens.fcm()
            _ = try await bed.request("PUT", bed.devicePath("d1"), json: ["provider": "fcm", "token": token])
            try await bed.waitForState("d1", "registered")
            let oldClient = try await bed.clientId(of: "d1")
            _ = try await bed.request("PUT", bed.devicePath("d1"), json: ["provider": "fcm", "token": token, "clientId": "sdk-client-42"])
            let status = try await bed.waitForState("d1", "registered")
            #expect(status["clientId"] as? String == "sdk-client-42")
            #expect(try #require(await bed.sandbox.client(oldClient)).pushToken == nil)
            #expect(try #require(await bed.sandbox.client("sdk-client-42")).pushToken == token)
        }
    }

    @Test("listing pages through every device once, filtered by state")
    func listing() async throws {
        try await withTestBed { bed in
            for i in 0..<25 {
                _ = try await bed.request("PUT", bed.devicePath(String(format: "dev-%02d", i)), json: ["provider": "fcm", "token": Tokens.fcm()])
            }
            for i in 0..<25 { try await bed.waitForState(String(format: "dev-%02d", i), "registered") }
            var seen: [String] = []
            var cursor: String?
            repeat {
                let page = try await bed.request("GET", "/v1/apps/EMS12-34567/devices?limit=10" + (cursor.map { "&cursor=\($0)" } ?? ""))
                #expect(page.status == 200)
                let devices = try #require(page.json["devices"] as? [[String: Any]])
                seen += devices.compactMap { $0["deviceId"] as? String }
                cursor = page.json["nextCursor"] as? String
            } while cursor != nil
            #expect(seen == (0..<25).map { String(format: "dev-%02d", $0) })
            let registered = try await bed.request("GET", "/v1/apps/EMS12-34567/devices?state=registered&limit=100")
            #expect((registered.json["devices"] as? [Any])?.count == 25)
            let failed = try await bed.request("GET", "/v1/apps/EMS12-34567/devices?state=failed")
            #expect((failed.json["devices"] as? [Any])?.isEmpty == true)
            #expect(failed.json["nextCursor"] is NSNull)
            #expect(try await bed.request("GET", "/v1/apps/EMS12-34567/devices?state=bogus").status == 422)
        }
    }

    @Test("a permanent push-token failure leaves the device failed with the reason; a new intent retries it")
    func permanentFailure() async throws {
        try await withTestBed { bed in
            try await bed.addFault(["status": 400, "count": 1, "path": "push-token"])
            let token = Tokens.fcm()
            _ = try await bed.request("PUT", bed.devicePath("d1"), json: ["provider": "fcm", "token": token])
            let failed = try await bed.waitFor("d1") { ($0["state"] as? String) == "failed" }
            let lastError = try #require(failed["lastError"] as? [String: Any])
            #expect(lastError["step"] as? String == "push-token")
            #expect(lastError["status"] as? Int == 400)
            #expect(lastError["nextAttemptAt"] is NSNull)
            let retried = try await bed.request("PUT", bed.devicePath("d1") + "/push-token", json: ["provider": "fcm", "token": token])
            #expect(retried.status == 202, "after a permanent failure the same token is sent again")
            try await bed.waitForState("d1", "registered")
        }
    }

    @Test("with the queue at its bound, a write gets 429 with Retry-After and stores nothing")
    func queueBound() async throws {
        try await withTestBed(configure: { $0.limits.maxQueuedIntents = 4 }) { bed in
            try await bed.addFault(["status": 503, "unlimited": true])
            for i in 0..<3 {
                #expect(try await bed.request("PUT", bed.devicePath("q\(i)"), json: ["provider": "fcm", "token": Tokens.fcm()]).status == 202)
            }
            #expect(try await bed.request("PUT", bed.devicePath("q0") + "/push-token", json: ["provider": "fcm", "token": Tokens.fcm()]).status == 202)
            let full = try await bed.request("PUT", bed.devicePath("q9"), json: ["provider": "fcm", "token": Tokens.fcm()])
            #expect(full.status == 429)
            #expect(full.headers["retry-after"] != nil)
            #expect(full.contentType == "application/problem+json")
            #expect(try await bed.request("GET", bed.devicePath("q9")).status == 404)
            // A second rotation of q0 collapses into the queued one and still fits.
            #expect(try await bed.request("PUT", bed.devicePath("q0") + "/push-token", json: ["provider": "fcm", "token": Tokens.fcm()]).status == 202)
        }
    }
}
