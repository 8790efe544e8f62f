import Foundation
import Testing

/// Dead tokens reported back (`POST /v1/apps/{code}/tokens/invalidate`): the real server and the real sandbox over
/// loopback, on SQLite and on PostgreSQL (when `PUSHBRIDGE_TEST_POSTGRES_URL` names a server).
@Suite("Dead-token intake", .serialized)
struct TokenInvalidationTests {
    static let path = "/v1/apps/\(TestBed.app)/tokens/invalidate"

    @Test("a registered token reported dead is removed at ME and its device ends unregistered; again: deduplicated; a later PUT registers it", arguments: InvariantRegressionTests.stores)
    func registeredToken(store: String) async throws {
        try await InvariantRegressionTests.withBed(store) { bed in
            let token = Tokens.fcm()
            _ = try await bed.request("PUT", bed.devicePath("a"), json: ["provider": "fcm", "token": token])
            let registered = try await bed.waitForState("a", "registered")
            let hash = try #require(registered["tokenHash"] as? String)
            let a = try await bed.clientId(of: "a")

            let answer = try await bed.request("POST", Self.path, json: ["provider": "fcm", "token": token, "reason": "UNREGISTERED"])
            #expect(answer.status == 202, "\(answer.json)")
            let devices = try #require(answer.json["devices"] as? [[String: Any]])
            #expect(devices.map { $0["deviceId"] as? String } == ["a"])
            #expect(devices.first?["tokenHash"] is NSNull)
            #expect(answer.json["deduplicated"] == nil)
            #expect(!String(decoding: answer.body, as: UTF8.self).contains(token))

            let after = try await bed.waitForState("a", "unregistered")
            #expect(after["tokenHash"] is NSNull)
            #expect(after["lastError"] is NSNull)
            #expect(await bed.sandbox.client(a)?.pushToken == nil)
            let removals = await bed.sandbox.requestLog().filter { $0.clientId == a && $0.method == "DELETE" && $0.path.hasSuffix("/push-token") }
            #expect(removals.map(\.status) == [204])

            // Reported again, by hash this time: nobody holds it, nothing changes.
            let again = try await bed.request("POST", Self.path, json: ["tokenHash": hash])
            #expect(again.status == 200)
            #expect((again.json["devices"] as? [Any])?.isEmpty == true)
            #expect(again.json["deduplicated"] as? Bool == true)
            #expect(try await bed.status("a")["state"] as? String == "unregistered")

            // The same token sent again later, by another device, registers normally.
            let putB = try await bed.request("PUT", bed.devicePath("b"), json: ["provider": "fcm", "token": token])
            #expect(putB.status == 202, "\(putB.status) \(putB.json)")
            let b = try await bed.waitForState("b", "registered")
            #expect(b["tokenHash"] as? String == hash)
            #expect(await bed.sandbox.client(try await bed.clientId(of: "b"))?.pushToken == token)
            #expect(try await bed.status("a")["state"] as? String == "unregistered")
        }
    }

    @Test("a token only queued (its PUT retried behind 503s) reported dead by hash is retried no more; the device's older token goes too", arguments: InvariantRegressionTests.stores)
    func queuedToken(store: String) async throws {
        try await InvariantRegressionTests.withBed(store) { bed in
            let (t1, t2) = (Tokens.fcm(), Tokens.fcm())
            _ = try await bed.request("PUT", bed.devicePath("c"), json: ["provider": "fcm", "token": t1])
            try await bed.waitForState("c", "registered")
            let c = try await bed.clientId(of: "c")
            try await bed.addFault(["mode": "status", "status": 503, "method": "PUT", "path": "/push-token", "unlimited": true])
            let queued = try await bed.request("PUT", bed.devicePath("c") + "/push-token", json: ["provider": "fcm", "token": t2])
            let hash = try #require(queued.json["tokenHash"] as? String)
            try await bed.waitFor("c") { ($0["state"] as? String) == "retrying" }

            let answer = try await bed.request("POST", Self.path, json: ["tokenHash": hash])
            #expect(answer.status == 202)
            #expect((answer.json["devices"] as? [[String: Any]])?.map { $0["deviceId"] as? String } == ["c"])
            // The fault stays on (it refuses PUTs only): the dead token's PUT is dropped, not retried until ME takes
            // it. (One already on its way when the report came may still go out: the engine does not look again
            // between loading a step and sending it. With the fault on, it is refused like the others.)
            let after = try await bed.waitForState("c", "unregistered")
            #expect(after["tokenHash"] is NSNull)
            func putsOfC() async -> Int {
                await bed.sandbox.requestLog().filter { $0.clientId == c && $0.method == "PUT" && $0.path.hasSuffix("/push-token") }.count
            }
            let putsAtRest = await putsOfC()
            try await Task.sleep(for: .seconds(1))  // several backoff periods (50 to 400 ms here)
            #expect(await putsOfC() == putsAtRest)
            // The backend's newest token is dead, so the device has none: the older one it had at ME is removed too.
            #expect(await bed.sandbox.client(c)?.pushToken == nil)
            let removals = await bed.sandbox.requestLog().filter { $0.clientId == c && $0.method == "DELETE" && $0.path.hasSuffix("/push-token") }
            #expect(removals.map(\.status) == [204])
        }
    }

    @Test("bad reports are problem+json naming the field, and change nothing", arguments: InvariantRegressionTests.stores)
    func badInput(store: String) async throws {
        try await InvariantRegressionTests.withBed(store) { bed in
            let token = Tokens.fcm()
            _ = try await bed.request("PUT", bed.devicePath("kept"), json: ["provider": "fcm", "token": token])
            let before = try await bed.waitForState("kept", "registered")
            let hash = try #require(before["tokenHash"] as? String)
            let cases: [(body: [String: Any], field: String)] = [
                (["provider": "blackberry", "token": token], "provider"),
                (["token": token], "provider"),
                (["provider": "apns", "token": "undefined"], "token"),
                (["provider": "fcm"], "token"),
                (["tokenHash": String(hash.uppercased())], "tokenHash"),
                (["tokenHash": String(hash.dropLast())], "tokenHash"),
                (["tokenHash": 42], "tokenHash"),
                (["tokenHash": hash, "provider": "fcm", "token": token], "tokenHash"),
                (["tokenHash": hash, "reason": String(repeating: "x", count: 257)], "reason"),
                (["tokenHash": hash, "reason": 7], "reason"),
            ]
            for (body, field) in cases {
                let a = try await bed.request("POST", Self.path, json: body)
                #expect(a.status == 422, "\(body): \(a.json)")
                #expect(a.contentType == "application/problem+json")
                #expect(a.json["field"] as? String == field, "\(body): \(a.json)")
                #expect(!String(decoding: a.body, as: UTF8.self).contains(token))
            }
            let syntax = try await bed.request("POST", Self.path, raw: Data("{\"tokenHash\":".utf8))
            #expect(syntax.status == 400 && syntax.contentType == "application/problem+json")
            #expect(try await bed.request("POST", "/v1/apps/EMS00-00000/tokens/invalidate", json: ["tokenHash": hash]).status == 404)
            #expect(try await bed.request("GET", Self.path).status == 405)
            try await Task.sleep(for: .milliseconds(100))
            let after = try await bed.status("kept")
            #expect(after["state"] as? String == "registered" && after["tokenHash"] as? String == hash && after["pending"] as? Int == 0, "\(after)")
            #expect(await bed.sandbox.client(try await bed.clientId(of: "kept"))?.pushToken == token)
            // A reason of exactly 256 characters is fine, and the token is still held: this one goes through.
            // 256 characters of four bytes each, and token and provider sent as null (absent) beside the hash.
            let ok = try await bed.request("POST", Self.path, json: ["tokenHash": hash, "token": NSNull(), "provider": NSNull(), "reason": String(repeating: "🙂", count: 256)])
            #expect(ok.status == 202, "\(ok.json)")
        }
    }
}
