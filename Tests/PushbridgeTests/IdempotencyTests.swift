import Foundation
import Testing

/// `Idempotency-Key` on the API's writes: the real server and sandbox over loopback, on SQLite and on PostgreSQL
/// (when `PUSHBRIDGE_TEST_POSTGRES_URL` names a server).
@Suite("Idempotency keys", .serialized)
struct IdempotencyTests {
    /// The events requests the sandbox saw for `deviceId`'s client.
    static func eventCalls(_ bed: TestBed, _ deviceId: String) async throws -> Int {
        let clientId = try await bed.clientId(of: deviceId)
        let data = try await bed.sandboxRequest("GET", "/_sandbox/requests?clientId=\(clientId)").body
        let log = try JSONSerialization.jsonObject(with: data) as? [[String: Any]] ?? []
        return log.filter { ($0["path"] as? String ?? "").hasSuffix("/events") }.count
    }

    static func withBed(_ store: String, _ body: (TestBed) async throws -> Void) async throws {
        // No start event: every events request at the sandbox is one the test sent.
        try await InvariantRegressionTests.withBed(store, configure: { $0.apps[0].startEvent = nil }, body)
    }

    @Test("a repeated POST .../events reaches ME once and gets the first answer again; another body with the key is 422 and changes nothing", arguments: InvariantRegressionTests.stores)
    func repeatedEvents(store: String) async throws {
        try await Self.withBed(store) { bed in
            _ = try await bed.request("PUT", bed.devicePath("e"), json: ["provider": "fcm", "token": Tokens.fcm()])
            try await bed.waitForState("e", "registered")
            let events = ["events": [["name": "purchase", "attributes": ["sku": "A-1"]]]]
            let first = try await bed.request("POST", bed.devicePath("e") + "/events", json: events, headers: ["Idempotency-Key": "order-1001"])
            #expect(first.status == 202)
            try await bed.waitForState("e", "registered")
            let again = try await bed.request("POST", bed.devicePath("e") + "/events", json: events, headers: ["Idempotency-Key": "order-1001"])
            #expect(again.status == 202)
            #expect(again.body == first.body, "the first answer, byte for byte")
            #expect(again.headers["idempotent-replayed"] == "true")
            #expect(first.headers["idempotent-replayed"] == nil)
            let other = try await bed.request(
                "POST", bed.devicePath("e") + "/events", json: ["events": [["name": "refund"]]], headers: ["Idempotency-Key": "order-1001"])
            #expect(other.status == 422)
            #expect(other.json["type"] as? String == "urn:pushbridge:problem:idempotency-key-reused")
            #expect(other.json["field"] as? String == "Idempotency-Key")
            // The same JSON with its members in another order is the same request.
            let reordered = try await bed.request(
                "POST", bed.devicePath("e") + "/events", raw: Data(#"{"events":[{"attributes":{"sku":"A-1"},"name":"purchase"}]}"#.utf8),
                headers: ["Idempotency-Key": "order-1001"])
            let ordered = try await bed.request(
                "POST", bed.devicePath("e") + "/events", raw: Data(#"{"events":[{"name":"purchase","attributes":{"sku":"A-1"}}]}"#.utf8),
                headers: ["Idempotency-Key": "order-1001"])
            #expect(reordered.status == 202 && reordered.body == first.body && ordered.status == 202 && ordered.body == first.body)
            // Another path with the same key is another request too.
            let elsewhere = try await bed.request("POST", bed.devicePath("f") + "/events", json: events, headers: ["Idempotency-Key": "order-1001"])
            #expect(elsewhere.status == 422)
            try await Task.sleep(for: .milliseconds(300))
            try await bed.waitForState("e", "registered")
            #expect(try await Self.eventCalls(bed, "e") == 1)
            #expect(try await bed.status("e")["pending"] as? Int == 0)
            // Without the header nothing is remembered: the same events again are sent again.
            _ = try await bed.request("POST", bed.devicePath("e") + "/events", json: events)
            try await bed.waitFor("e") { ($0["pending"] as? Int) == 0 && ($0["state"] as? String) == "registered" }
            #expect(try await Self.eventCalls(bed, "e") == 2)
        }
    }

    @Test("concurrent identical requests with one key store one intent: one is answered, the others 409 or the same answer again", arguments: InvariantRegressionTests.stores)
    func concurrent(store: String) async throws {
        try await Self.withBed(store) { bed in
            _ = try await bed.request("PUT", bed.devicePath("c"), json: ["provider": "fcm", "token": Tokens.fcm()])
            try await bed.waitForState("c", "registered")
            let events = ["events": [["name": "checkout"]]]
            let answers = try await withThrowingTaskGroup(of: TestBed.Answer.self) { group in
                for _ in 0..<6 {
                    group.addTask { try await bed.request("POST", bed.devicePath("c") + "/events", json: events, headers: ["Idempotency-Key": "same"]) }
                }
                var all: [TestBed.Answer] = []
                for try await a in group { all.append(a) }
                return all
            }
            let fresh = answers.filter { $0.status == 202 && $0.headers["idempotent-replayed"] == nil }
            #expect(fresh.count == 1, "\(answers.map(\.status))")
            #expect(answers.allSatisfy { $0.status == 202 || $0.status == 409 })
            for conflict in answers where conflict.status == 409 {
                #expect(conflict.json["type"] as? String == "urn:pushbridge:problem:idempotency-key-in-use")
                #expect(conflict.headers["retry-after"] != nil)
            }
            try await Task.sleep(for: .milliseconds(300))
            try await bed.waitFor("c") { ($0["pending"] as? Int) == 0 && ($0["state"] as? String) == "registered" }
            #expect(try await Self.eventCalls(bed, "c") == 1)
        }
    }

    @Test("a bad key is 422 naming Idempotency-Key and stores nothing; a first answer of 4xx is given again; an unknown app is 404 as without a key", arguments: InvariantRegressionTests.stores)
    func badInput(store: String) async throws {
        try await Self.withBed(store) { bed in
            let token = ["provider": "fcm", "token": Tokens.fcm()]
            for bad in [String(repeating: "k", count: 256), "tab\tinside", "ключ"] {
                let answer = try await bed.request("PUT", bed.devicePath("b"), json: token, headers: ["Idempotency-Key": bad])
                #expect(answer.status == 422, "\(bad.prefix(8))")
                #expect(answer.json["field"] as? String == "Idempotency-Key")
            }
            #expect(try await bed.request("GET", bed.devicePath("b")).status == 404, "nothing was stored")
            // A rejected request's answer is kept like any other: the same request again gets it, and stores nothing.
            let invalid = ["provider": "apns", "token": "not-a-token"]
            let first = try await bed.request("PUT", bed.devicePath("b"), json: invalid, headers: ["Idempotency-Key": "k-422"])
            #expect(first.status == 422)
            let again = try await bed.request("PUT", bed.devicePath("b"), json: invalid, headers: ["Idempotency-Key": "k-422"])
            #expect(again.status == 422 && again.body == first.body && again.headers["idempotent-replayed"] == "true")
            #expect(try await bed.request("GET", bed.devicePath("b")).status == 404)
            let unknownApp = try await bed.request("PUT", "/v1/apps/EMS00-00000/devices/b", json: token, headers: ["Idempotency-Key": "k"])
            #expect(unknownApp.status == 404)
            // A key of 255 printable characters is fine, and the device is created once.
            let long = String(repeating: "a", count: 254) + "~"
            let created = try await bed.request("PUT", bed.devicePath("b"), json: token, headers: ["Idempotency-Key": long])
            #expect(created.status == 202)
            let replayed = try await bed.request("PUT", bed.devicePath("b"), json: token, headers: ["Idempotency-Key": long])
            #expect(replayed.status == 202 && replayed.body == created.body)
        }
    }

    @Test("storage that fails without telling whether the write went through keeps the key taken (409 to a retry, not a second write); a body over 64 KiB with a key is 413")
    func storageFailure() async throws {
        try await StorageFailureTests.withFailingStore(configure: { $0.apps[0].startEvent = nil }) { bed, store in
            _ = try await bed.request("PUT", bed.devicePath("s"), json: ["provider": "fcm", "token": Tokens.fcm()])
            try await bed.waitForState("s", "registered")
            let events = Data(#"{"events":[{"name":"paid"}]}"#.utf8)
            store.set(.fail, on: ["accept"])
            let failed = try await bed.request("POST", bed.devicePath("s") + "/events", raw: events, headers: ["Idempotency-Key": "pay-7"])
            #expect(failed.status == 503)
            store.set(nil, on: ["accept"])
            // The write may have been stored: a retry with the key is held off instead of storing it again.
            let retry = try await bed.request("POST", bed.devicePath("s") + "/events", raw: events, headers: ["Idempotency-Key": "pay-7"])
            #expect(retry.status == 409)
            #expect(retry.json["type"] as? String == "urn:pushbridge:problem:idempotency-key-in-use")
            // Another key goes through.
            #expect(try await bed.request("POST", bed.devicePath("s") + "/events", raw: events, headers: ["Idempotency-Key": "pay-8"]).status == 202)
            // Keeping the answer fails: the answer still stands (202), and the key stays taken.
            store.set(.fail, on: ["settle_idempotency_key"])
            #expect(try await bed.request("POST", bed.devicePath("s") + "/events", raw: events, headers: ["Idempotency-Key": "pay-9"]).status == 202)
            store.set(nil, on: ["settle_idempotency_key"])
            #expect(try await bed.request("POST", bed.devicePath("s") + "/events", raw: events, headers: ["Idempotency-Key": "pay-9"]).status == 409)
            let big = Data(("{\"events\":[{\"name\":\"" + String(repeating: "x", count: 70_000) + "\"}]}").utf8)
            let tooLarge = try await bed.request("POST", bed.devicePath("s") + "/events", raw: big, headers: ["Idempotency-Key": "big"])
            #expect(tooLarge.status == 413)
            #expect(tooLarge.json["type"] as? String == "urn:pushbridge:problem:body-too-large")
        }
    }
}
