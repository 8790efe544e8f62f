import Foundation
import MESandbox
import Testing

/// The real server against the real sandbox over loopback, on a real SQLite file.
@Suite("End to end", .serialized)
struct EndToEndTests {
    @Test("a new device of each provider runs the whole workflow in order and ends registered")
    func newDeviceEveryProvider() async throws {
        try await withTestBed { bed in
            for (i, item) in Tokens.all().enumerated() {
                let id = "device-\(item.provider)-\(i)"
                let normalized = try await bed.request("POST", "/v1/tokens/normalize", json: ["provider": item.provider, "token": item.token])
                #expect(normalized.status == 200, "\(item.provider): \(String(decoding: normalized.body, as: UTF8.self))")
                let canonical = try #require(normalized.json["pushToken"] as? String)
                let hash = try #require(normalized.json["tokenHash"] as? String)

                let started = try await bed.request("PUT", bed.devicePath(id), json: [
                    "provider": item.provider, "token": item.token,
                    "device": ["applicationVersion": "1.2.3", "deviceModel": "Pixel 8", "osVersion": "15", "language": "de-DE", "timezone": "+0100"],
                ])
                #expect(started.status == 202)
                #expect(started.json["deduplicated"] as? Bool == false)
                let status = try await bed.waitForState(id, "registered")
                #expect(status["tokenHash"] as? String == hash)
                #expect(status["platform"] as? String == item.platform)
                #expect((status["steps"] as? [String: Any]).flatMap { ($0["pushToken"] as? [String: Any])?["tokenHash"] as? String } == hash)
                #expect(status["lastError"] is NSNull)

                let clientId = try await bed.clientId(of: id)
                let client = try #require(await bed.sandbox.client(clientId))
                #expect(client.platform == item.platform)
                #expect(client.pushToken == canonical)
                #expect(client.contact?.kind == .anonymous)
                #expect(client.events.map(\.name) == ["app:start"])
                let paths = client.requests.map { "\($0.method) \($0.path.components(separatedBy: "/apps/\(TestBed.app)").last ?? $0.path)" }
                #expect(paths == ["POST /client", "POST /client/contact", "POST /client/events", "PUT /client/push-token"], "\(item.provider): \(paths)")
                #expect(client.counts.orderViolations == 0)
                #expect(client.counts.staleClientStates == 0)
                #expect(client.requests.allSatisfy { $0.sentClientState })
                let orders = client.requests.compactMap(\.requestOrder)
                #expect(orders.count == 4 && zip(orders, orders.dropFirst()).allSatisfy { $0 < $1 })
                // The device info reached ME as given, with the bridge's own sdkVersion.
                let properties = try JSONSerialization.jsonObject(with: JSONEncoder().encode(client.properties)) as? [String: Any]
                #expect(properties?["deviceModel"] as? String == "Pixel 8")
                #expect(properties?["timezone"] as? String == "+0100")
                #expect(properties?["sdkVersion"] as? String != nil)
            }
        }
    }

    @Test("the same token again is deduplicated with no ME call; a new token costs one call")
    func dedup() async throws {
        try await withTestBed { bed in
            let token = Tokens.fcm()
            _ = try await bed.request("PUT", bed.devicePath("d1"), json: ["provider": "fcm", "token": token])
            try await bed.waitForState("d1", "registered")
            let clientId = try await bed.clientId(of: "d1")

            let again = try await bed.request("PUT", bed.devicePath("d1") + "/push-token", json: ["provider": "fcm", "token": "  \(token)\n"])
            #expect(again.status == 200)
            #expect(again.json["deduplicated"] as? Bool == true)
            #expect(again.json["state"] as? String == "registered")

            let newToken = Tokens.fcm()
            let rotated = try await bed.request("PUT", bed.devicePath("d1") + "/push-token", json: ["provider": "fcm", "token": newToken])
            #expect(rotated.status == 202)
            #expect(rotated.json["deduplicated"] as? Bool == false)
            try await bed.waitForState("d1", "registered")
            let client = try #require(await bed.sandbox.client(clientId))
            #expect(client.counts.pushTokenPuts == 2)
            #expect(client.pushToken == newToken)
            // The GET status has no `deduplicated` member: it only answers writes.
            #expect(try await bed.status("d1")["deduplicated"] == nil)
        }
    }

    @Test("login and logout reach ME as identified and anonymous links; repeating either changes nothing")
    func loginLogout() async throws {
        try await withTestBed { bed in
            _ = try await bed.request("PUT", bed.devicePath("d1"), json: ["provider": "fcm", "token": Tokens.fcm()])
            try await bed.waitForState("d1", "registered")
            let clientId = try await bed.clientId(of: "d1")

            let login = try await bed.request("PUT", bed.devicePath("d1") + "/contact", json: ["fieldValue": "jane@example.com"])
            #expect(login.status == 202)
            let afterLogin = try await bed.waitForState("d1", "registered")
            #expect((afterLogin["contact"] as? [String: Any])?["kind"] as? String == "identified")
            #expect((afterLogin["contact"] as? [String: Any])?["fieldId"] as? Int == 3)
            var client = try #require(await bed.sandbox.client(clientId))
            #expect(client.contact == SandboxContact(kind: .identified, fieldId: 3, fieldValue: "jane@example.com"))
            #expect(client.counts.identifiedLinks == 1)

            let loginAgain = try await bed.request("PUT", bed.devicePath("d1") + "/contact", json: ["fieldValue": "jane@example.com", "fieldId": 3])
            #expect(loginAgain.status == 200 && loginAgain.json["deduplicated"] as? Bool == true)

            let logout = try await bed.request("DELETE", bed.devicePath("d1") + "/contact")
            #expect(logout.status == 202)
            try await bed.waitForState("d1", "registered")
            let logoutAgain = try await bed.request("DELETE", bed.devicePath("d1") + "/contact")
            #expect(logoutAgain.status == 200 && logoutAgain.json["deduplicated"] as? Bool == true)
            client = try #require(await bed.sandbox.client(clientId))
            #expect(client.contact?.kind == .anonymous)
            #expect(client.counts.identifiedLinks == 1)
            #expect(client.counts.anonymousLinks == 2)
            // As the SDKs do, the token is sent again after the login and after the logout.
            #expect(client.counts.pushTokenPuts == 3)
        }
    }

    @Test("expired contact tokens: a rotation still lands after a refresh; revoked refresh tokens: after a re-link")
    func expiredAndRevoked() async throws {
        try await withTestBed { bed in
            _ = try await bed.request("PUT", bed.devicePath("d1"), json: ["provider": "fcm", "token": Tokens.fcm()])
            try await bed.waitForState("d1", "registered")
            let clientId = try await bed.clientId(of: "d1")

            await bed.sandbox.expireContactTokens()
            let t2 = Tokens.fcm()
            _ = try await bed.request("PUT", bed.devicePath("d1") + "/push-token", json: ["provider": "fcm", "token": t2])
            try await bed.waitForState("d1", "registered")
            var client = try #require(await bed.sandbox.client(clientId))
            #expect(client.pushToken == t2)
            #expect(client.counts.refreshes == 1)
            #expect(client.counts.anonymousLinks == 1)

            await bed.sandbox.expireContactTokens()
            await bed.sandbox.revokeRefreshTokens()
            let t3 = Tokens.fcm()
            _ = try await bed.request("PUT", bed.devicePath("d1") + "/push-token", json: ["provider": "fcm", "token": t3])
            try await bed.waitForState("d1", "registered")
            client = try #require(await bed.sandbox.client(clientId))
            #expect(client.pushToken == t3)
            #expect(client.counts.anonymousLinks == 2, "the dead refresh token must lead to one re-link")
        }
    }

    @Test("503 three times: the status shows retrying with lastError, then registered")
    func retrying() async throws {
        try await withTestBed(configure: { $0.emarsys.retry = .init(initialDelayMs: 400, maxDelayMs: 800) }) { bed in
            try await bed.addFault(["status": 503, "count": 3, "path": "push-token"])
            _ = try await bed.request("PUT", bed.devicePath("d1"), json: ["provider": "fcm", "token": Tokens.fcm()])
            let retrying = try await bed.waitFor("d1") { ($0["state"] as? String) == "retrying" }
            let lastError = try #require(retrying["lastError"] as? [String: Any])
            #expect(lastError["step"] as? String == "push-token")
            #expect(lastError["status"] as? Int == 503)
            #expect(lastError["nextAttemptAt"] as? String != nil)
            #expect((lastError["attempts"] as? Int ?? 0) >= 1)
            let done = try await bed.waitForState("d1", "registered")
            #expect(done["lastError"] is NSNull)
            let client = try #require(await bed.sandbox.client(try await bed.clientId(of: "d1")))
            #expect(client.counts.pushTokenPuts == 1)
        }
    }

    @Test("200 starts accepted while ME answers 503, the bridge restarted on the same file: all end registered, none linked twice")
    func survivesRestart() async throws {
        try await withTestBed(configure: { $0.emarsys.retry = .init(initialDelayMs: 100, maxDelayMs: 300) }) { bed in
            try await bed.addFault(["status": 503, "unlimited": true])
            let ids = (0..<200).map { "restart-\($0)" }
            try await withThrowingTaskGroup(of: Int.self) { group in
                for (n, id) in ids.enumerated() {
                    group.addTask {
                        try await bed.request("PUT", bed.devicePath(id), json: ["provider": "fcm", "token": "tok\(n):APA91b\(Tokens.base64url(Tokens.random(40)))"]).status
                    }
                }
                for try await status in group { #expect(status == 202) }
            }
            try await bed.stopBridge()
            try await bed.startBridge()
            try await bed.clearFaults()
            for id in ids {
                let status = try await bed.waitForState(id, "registered", timeout: .seconds(60))
                let clientId = try #require(status["clientId"] as? String)
                let client = try #require(await bed.sandbox.client(clientId))
                #expect(client.counts.anonymousLinks == 1, "\(id) linked \(client.counts.anonymousLinks) times")
                #expect(client.counts.client == 1)
            }
        }
    }
}
