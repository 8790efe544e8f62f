import Foundation
import Testing

/// People rather than devices (`POST /v1/apps/{code}/contacts/devices|logout|erase`): the real server and the real
/// sandbox over loopback, on SQLite and on PostgreSQL (when `PUSHBRIDGE_TEST_POSTGRES_URL` names a server). The
/// sandbox is the oracle for what ME holds of each client.
@Suite("Contacts: list, log out everywhere, erase", .serialized)
struct ContactsTests {
    static let base = "/v1/apps/\(TestBed.app)/contacts/"

    static func ids(_ answer: TestBed.Answer) -> [String] {
        (answer.json["devices"] as? [[String: Any]] ?? []).compactMap { $0["deviceId"] as? String }
    }

    @Test("bad input is 422 naming the field and changes nothing", arguments: InvariantRegressionTests.stores)
    func badInput(store: String) async throws {
        try await InvariantRegressionTests.withBed(store) { bed in
            _ = try await bed.request("PUT", bed.devicePath("a"), json: ["provider": "fcm", "token": Tokens.fcm(), "contact": ["fieldValue": "ann@example.com"]])
            let before = try await bed.waitForState("a", "registered")
            for route in ["devices", "logout", "erase"] {
                for (body, field) in [
                    ([:], "fieldValue"), (["fieldValue": ""], "fieldValue"), (["fieldValue": 7], "fieldValue"),
                    (["fieldValue": String(repeating: "a", count: 1025)], "fieldValue"),
                    (["fieldValue": "ann@example.com", "fieldId": 0], "fieldId"), (["fieldValue": "ann@example.com", "fieldId": "3"], "fieldId"),
                ] as [([String: Any], String)] {
                    let answer = try await bed.request("POST", Self.base + route, json: body)
                    #expect(answer.status == 422, "\(route) \(body): \(answer.status)")
                    #expect(answer.json["field"] as? String == field, "\(route) \(body): \(answer.json)")
                    #expect(answer.contentType.hasPrefix("application/problem+json"))
                }
                #expect(try await bed.request("POST", Self.base + route, raw: Data("{".utf8)).status == 400)
                #expect(try await bed.request("POST", "/v1/apps/EMS00-00000/contacts/" + route, json: ["fieldValue": "ann@example.com"]).status == 404)
            }
            // Nothing changed: the device is as it was, still ann's, and ME was asked nothing more.
            let after = try await bed.status("a")
            #expect(after["contact"] as? [String: Any] as NSDictionary? == before["contact"] as? [String: Any] as NSDictionary?)
            #expect(after["pending"] as? Int == 0 && after["updatedAt"] as? String == before["updatedAt"] as? String)
            #expect(Self.ids(try await bed.request("POST", Self.base + "devices", json: ["fieldValue": "ann@example.com"])) == ["a"])
        }
    }

    @Test("a contact's devices are listed, logged out everywhere, and erased; others are untouched", arguments: InvariantRegressionTests.stores)
    func listLogoutErase(store: String) async throws {
        try await InvariantRegressionTests.withBed(store) { bed in
            let (ann, bob) = ("ann@example.com", "bob@example.com")
            // a, b: ann (b from its start); c: bob; d: ann at another field; e: ann, then logged out; f: ann, then bob.
            for id in ["a", "c", "d", "e", "f"] {
                #expect(try await bed.request("PUT", bed.devicePath(id), json: ["provider": "fcm", "token": Tokens.fcm()]).status == 202)
            }
            _ = try await bed.request("PUT", bed.devicePath("b"), json: ["provider": "fcm", "token": Tokens.fcm(), "contact": ["fieldValue": ann]])
            for (id, body) in [("a", ["fieldValue": ann]), ("c", ["fieldValue": bob]), ("d", ["fieldValue": ann, "fieldId": 9]),
                               ("e", ["fieldValue": ann]), ("f", ["fieldValue": ann]), ("f", ["fieldValue": bob])] as [(String, [String: Any])] {
                #expect(try await bed.request("PUT", bed.devicePath(id) + "/contact", json: body).status == 202)
            }
            #expect(try await bed.request("DELETE", bed.devicePath("e") + "/contact").status == 202)
            for id in ["a", "b", "c", "d", "e", "f"] { try await bed.waitForState(id, "registered") }

            let listed = try await bed.request("POST", Self.base + "devices", json: ["fieldValue": ann])
            #expect(listed.status == 200)
            #expect(Self.ids(listed) == ["a", "b"])
            #expect(!String(decoding: listed.body, as: UTF8.self).contains(ann), "a status never holds a contact value")
            #expect(Self.ids(try await bed.request("POST", Self.base + "devices", json: ["fieldValue": ann, "fieldId": 9])) == ["d"])
            #expect(Self.ids(try await bed.request("POST", Self.base + "devices", json: ["fieldValue": bob])) == ["c", "f"])
            #expect(Self.ids(try await bed.request("POST", Self.base + "devices", json: ["fieldValue": "nobody@example.com"])) == [])

            // Log ann out everywhere: a and b end anonymous at ME; d (another field) and bob's devices keep theirs.
            let logout = try await bed.request("POST", Self.base + "logout", json: ["fieldValue": ann])
            #expect(logout.status == 202)
            #expect(Self.ids(logout) == ["a", "b"])
            for id in ["a", "b"] {
                let status = try await bed.waitFor(id) { ($0["contact"] as? [String: Any])?["kind"] as? String == "anonymous" && $0["pending"] as? Int == 0 }
                #expect(status["state"] as? String == "registered")
                let client = try #require(await bed.sandbox.client(try await bed.clientId(of: id)))
                #expect(client.contact?.kind == .anonymous, "\(id) at ME: \(String(describing: client.contact))")
            }
            for (id, value) in [("c", bob), ("d", ann), ("f", bob)] {
                let client = try #require(await bed.sandbox.client(try await bed.clientId(of: id)))
                #expect(client.contact?.kind == .identified && client.contact?.fieldValue == value, "\(id) at ME")
            }
            #expect(Self.ids(try await bed.request("POST", Self.base + "devices", json: ["fieldValue": ann])) == [])
            // Again: nobody is ann's any more, so nothing is written.
            let again = try await bed.request("POST", Self.base + "logout", json: ["fieldValue": ann])
            #expect(again.status == 202 && Self.ids(again) == [])

            // Erase bob: c and f have their tokens removed at ME, then are gone; the others stay.
            let (cClient, fClient) = (try await bed.clientId(of: "c"), try await bed.clientId(of: "f"))
            let erase = try await bed.request("POST", Self.base + "erase", json: ["fieldValue": bob])
            #expect(erase.status == 202)
            #expect(Self.ids(erase) == ["c", "f"])
            for id in ["c", "f"] {
                let deadline = ContinuousClock.now + .seconds(30)
                while try await bed.request("GET", bed.devicePath(id)).status != 404, ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(50))
                }
                #expect(try await bed.request("GET", bed.devicePath(id)).status == 404, "\(id) was not forgotten")
            }
            for client in [cClient, fClient] {
                #expect(await bed.sandbox.client(client)?.pushToken == nil, "the token was removed at ME")
            }
            for id in ["a", "b", "d", "e"] { #expect(try await bed.request("GET", bed.devicePath(id)).status == 200) }
            #expect(Self.ids(try await bed.request("POST", Self.base + "devices", json: ["fieldValue": bob])) == [])
            try await bed.expectNoViolations()
        }
    }
}
