import Foundation
import PushbridgeConfig
import PushbridgeServer
import Testing

/// Every rejection is problem+json with the contract's status, and stores nothing.
@Suite("Bad input", .serialized)
struct BadInputTests {
    static let key = "key-for-app-one-0123456789"
    static let otherKey = "key-for-app-two-0123456789"

    static func configure(_ c: inout BridgeConfiguration) {
        c.apps = [
            .init(code: "EMS12-34567", contactFieldId: 3, anonymousContacts: true, startEvent: "app:start", apiKeys: [key]),
            .init(code: "EMS98-76543", contactFieldId: 3, anonymousContacts: true, startEvent: "app:start", apiKeys: [otherKey]),
        ]
    }

    func expectProblem(_ a: TestBed.Answer, _ status: Int, field: String? = nil, detailContains: String? = nil, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(a.status == status, "body: \(String(decoding: a.body, as: UTF8.self))", sourceLocation: sourceLocation)
        #expect(a.contentType == "application/problem+json", sourceLocation: sourceLocation)
        let p = a.json
        #expect((p["type"] as? String)?.hasPrefix("urn:pushbridge:problem:") == true, sourceLocation: sourceLocation)
        #expect(p["status"] as? Int == status, sourceLocation: sourceLocation)
        #expect(p["title"] is String && p["detail"] is String, sourceLocation: sourceLocation)
        if let field { #expect(p["field"] as? String == field, sourceLocation: sourceLocation) }
        if let detailContains { #expect((p["detail"] as? String)?.contains(detailContains) == true, "detail: \(p["detail"] ?? "")", sourceLocation: sourceLocation) }
    }

    @Test("each bad request gets its status as problem+json and writes nothing")
    func rejections() async throws {
        try await withTestBed(configure: Self.configure) { bed in
            let auth = ["Authorization": "Bearer \(Self.key)"]
            let path = bed.devicePath("d1")
            let good: [String: Any] = ["provider": "fcm", "token": Tokens.fcm()]

            expectProblem(try await bed.request("PUT", path, raw: Data("{\"provider\": ".utf8), headers: auth), 400)
            expectProblem(try await bed.request("PUT", path, json: ["provider": "apns", "token": "undefined"], headers: auth), 422, field: "token")
            expectProblem(try await bed.request("PUT", path, json: ["provider": "fcm", "token": "cd4129b133f461465fae0c04a7bf3a98e229d3a8b5c59f32c3dfaefd944188dd"], headers: auth), 422, field: "token", detailContains: "apns")
            expectProblem(try await bed.request("PUT", path, json: ["provider": "blackberry", "token": "x"], headers: auth), 422, field: "provider")
            expectProblem(try await bed.request("PUT", path, json: ["token": "x"], headers: auth), 422, field: "provider")
            expectProblem(try await bed.request("PUT", path, json: ["provider": "fcm", "token": Tokens.fcm(), "device": ["osVersion": 15]], headers: auth), 422, field: "device.osVersion")
            expectProblem(try await bed.request("PUT", path, json: ["provider": "fcm", "token": Tokens.fcm(), "device": ["timezone": "CET"]], headers: auth), 422, field: "device.timezone")
            expectProblem(try await bed.request("PUT", "/v1/apps/EMS00-00000/devices/d1", json: good, headers: auth), 404)
            expectProblem(try await bed.request("PUT", path, json: good), 401)
            expectProblem(try await bed.request("PUT", path, json: good, headers: ["Authorization": "Basic dXNlcjpwYXNz"]), 401)
            expectProblem(try await bed.request("PUT", path, json: good, headers: ["Authorization": "Bearer not-a-key-of-anyone-at-all"]), 401)
            expectProblem(try await bed.request("PUT", path, json: good, headers: ["Authorization": "Bearer \(Self.otherKey)"]), 403)
            let invalidate = "/v1/apps/EMS12-34567/tokens/invalidate"
            expectProblem(try await bed.request("POST", invalidate, json: good), 401)
            expectProblem(try await bed.request("POST", invalidate, json: good, headers: ["Authorization": "Bearer \(Self.otherKey)"]), 403)
            let big = Data("{\"provider\": \"fcm\", \"token\": \"\(String(repeating: "a", count: 70_000))\"}".utf8)
            expectProblem(try await bed.request("PUT", path, raw: big, headers: auth), 413)
            expectProblem(try await bed.request("PUT", bed.devicePath("bad%20id"), json: good, headers: auth), 400)
            // A final newline is not part of an id (ICU's `$` used to let it through), nor are 129 characters.
            expectProblem(try await bed.request("PUT", bed.devicePath("d1%0A"), json: good, headers: auth), 400)
            expectProblem(try await bed.request("PUT", bed.devicePath(String(repeating: "d", count: 129)), json: good, headers: auth), 400)
            expectProblem(try await bed.request("PUT", bed.devicePath("d%C3%A9"), json: good, headers: auth), 400)
            expectProblem(try await bed.request("PUT", path, json: ["provider": "fcm", "token": Tokens.fcm(), "device": ["timezone": "+0100\n"]], headers: auth), 422, field: "device.timezone")
            expectProblem(try await bed.request("PUT", path, json: ["provider": "fcm", "token": Tokens.fcm(), "device": ["timezone": "+01:0"]], headers: auth), 422, field: "device.timezone")
            expectProblem(try await bed.request("POST", path + "/events", json: ["events": [["name": "x"]]], headers: auth), 404)
            expectProblem(try await bed.request("PUT", path + "/contact", json: ["fieldValue": "a@example.com"], headers: auth), 404)
            expectProblem(try await bed.request("GET", "/v1/nothing-here"), 404)
            expectProblem(try await bed.request("POST", "/health"), 405)

            // Nothing was written by any of them.
            expectProblem(try await bed.request("GET", path, headers: auth), 404)
            let list = try await bed.request("GET", "/v1/apps/EMS12-34567/devices", headers: auth)
            #expect(list.status == 200)
            #expect((list.json["devices"] as? [Any])?.isEmpty == true)
            let log = await bed.sandbox.requestLog()
            #expect(log.isEmpty)
        }
    }

    @Test("bodies follow the token parser's rules: 16 levels, integers without fraction or exponent")
    func bodyParserRules() async throws {
        try await withTestBed(configure: Self.configure) { bed in
            let auth = ["Authorization": "Bearer \(Self.key)"]
            let path = bed.devicePath("d1")
            func nested(_ levels: Int) -> Data {
                // `levels` containers inside each other, the body first (an unknown member holds the rest):
                // the parser takes the body and 16 levels below it.
                let inner = String(repeating: "[", count: levels - 1) + String(repeating: "]", count: levels - 1)
                return Data("{\"provider\": \"fcm\", \"token\": \"\(Tokens.fcm())\", \"extra\": \(inner)}".utf8)
            }
            expectProblem(try await bed.request("PUT", path, raw: nested(18), headers: auth), 400)
            // A subscription object with an exponent in expirationTime is refused, as it is when sent as text.
            var subscription = Tokens.subscription(host: "fcm.googleapis.com", path: "/fcm/send/")
            let text = String(decoding: try JSONSerialization.data(withJSONObject: subscription), as: UTF8.self)
                .replacingOccurrences(of: "\"expirationTime\":null", with: "\"expirationTime\":1.7e12")
            #expect(text.contains("1.7e12"))
            let asText = try JSONSerialization.data(withJSONObject: ["provider": "chrome", "token": text])
            expectProblem(try await bed.request("PUT", path, raw: asText, headers: auth), 422, field: "token")
            let asObject = Data("{\"provider\": \"chrome\", \"token\": \(text)}".utf8)
            expectProblem(try await bed.request("PUT", path, raw: asObject, headers: auth), 422, field: "token")
            expectProblem(try await bed.request("GET", path, headers: auth), 404)

            #expect(try await bed.request("PUT", path, raw: nested(17), headers: auth).status == 202)
            subscription["expirationTime"] = 1_700_000_000_000
            #expect(try await bed.request("PUT", bed.devicePath("d2"), json: ["provider": "chrome", "token": subscription], headers: auth).status == 202)
            // A whole number written with a fraction is still that number; a fraction is not.
            let contact = path + "/contact"
            expectProblem(try await bed.request("PUT", contact, raw: Data(#"{"fieldValue": "a@example.com", "fieldId": 3.5}"#.utf8), headers: auth), 422, field: "fieldId")
            #expect(try await bed.request("PUT", contact, raw: Data(#"{"fieldValue": "a@example.com", "fieldId": 3.0}"#.utf8), headers: auth).status == 202)
        }
    }

    @Test("events: attribute values must be strings; events need a known device")
    func eventValidation() async throws {
        try await withTestBed(configure: Self.configure) { bed in
            let auth = ["Authorization": "Bearer \(Self.key)"]
            let path = bed.devicePath("d1")
            bed.statusHeaders = auth
            #expect(try await bed.request("PUT", path, json: ["provider": "fcm", "token": Tokens.fcm()], headers: auth).status == 202)
            expectProblem(try await bed.request("POST", path + "/events", json: ["events": [["name": "x", "attributes": ["n": 1]]]], headers: auth), 422, field: "events[0].attributes.n")
            expectProblem(try await bed.request("POST", path + "/events", json: ["events": [["name": ""]]], headers: auth), 422, field: "events[0].name")
            expectProblem(try await bed.request("POST", path + "/events", json: ["events": [["name": "x", "timestamp": "yesterday"]]], headers: auth), 422, field: "events[0].timestamp")
            let ok = try await bed.request("POST", path + "/events", json: ["events": [["name": "purchase", "attributes": ["sku": "A1"], "timestamp": "2026-11-29T11:00:00+01:00"]]], headers: auth)
            #expect(ok.status == 202)
            let final = try await bed.waitForState("d1", "registered")
            #expect(final["lastError"] is NSNull, "\(final)")
            let clientId = try #require(try await bed.request("GET", path, headers: auth).json["clientId"] as? String)
            let client = try #require(await bed.sandbox.client(clientId))
            let purchase = try #require(client.events.first { $0.name == "purchase" })
            #expect(purchase.type == "custom")
            #expect(purchase.timestamp == "2026-11-29T10:00:00.000Z")
            #expect(purchase.attributes == ["sku": "A1"])
        }
    }
}

@Suite("Paths and methods", .serialized)
struct PathAndMethodTests {
    @Test("percent-encoded path parameters mean what they decode to")
    func percentEncoded() async throws {
        try await withTestBed { bed in
            #expect(try await bed.request("PUT", bed.devicePath("a:b"), json: ["provider": "fcm", "token": Tokens.fcm()]).status == 202)
            let same = try await bed.request("GET", bed.devicePath("a%3Ab"))
            #expect(same.status == 200)
            #expect(same.json["deviceId"] as? String == "a:b")
            #expect(try await bed.request("GET", "/v1/apps/EMS12%2D34567/devices/a:b").status == 200)
            // 128 characters, every allowed punctuation among them: the longest id there is.
            let longest = "Az09._:-" + String(repeating: "x", count: 120)
            #expect(try await bed.request("PUT", bed.devicePath(longest), json: ["provider": "fcm", "token": Tokens.fcm()]).status == 202)
        }
    }

    @Test("wrong methods on known paths are 405 with Allow; a made-up cursor is 422")
    func methodsAndCursor() async throws {
        try await withTestBed { bed in
            for method in ["POST", "TRACE", "OPTIONS", "PATCH"] {
                let a = try await bed.request(method, "/health")
                #expect(a.status == 405, "\(method)")
                #expect(a.headers["allow"] == "GET")
                #expect(a.contentType == "application/problem+json")
            }
            let listing = try await bed.request("GET", "/v1/apps/EMS12-34567/devices?cursor=garbage!")
            #expect(listing.status == 422)
            #expect(listing.json["field"] as? String == "cursor")
        }
    }
}

@Suite("Input limits", .serialized)
struct InputLimitTests {
    @Test("events per request, attributes per event, unknown members, oversized headers")
    func limits() async throws {
        try await withTestBed { bed in
            let path = bed.devicePath("lim")
            // Members the contract does not name are ignored.
            let start = try await bed.request("PUT", path, json: ["provider": "fcm", "token": Tokens.fcm(), "myOwnField": ["x": 1], "device": ["extra": true]])
            #expect(start.status == 202)
            let tooMany = (0..<101).map { ["name": "e\($0)"] }
            let a = try await bed.request("POST", path + "/events", json: ["events": tooMany])
            #expect(a.status == 422 && a.json["field"] as? String == "events")
            let attributes = Dictionary(uniqueKeysWithValues: (0..<51).map { ("k\($0)", "v") })
            let b = try await bed.request("POST", path + "/events", json: ["events": [["name": "x", "attributes": attributes]]])
            #expect(b.status == 422 && b.json["field"] as? String == "events[0].attributes")
            let c = try await bed.request("POST", path + "/events", json: ["events": (0..<100).map { ["name": "e\($0)"] }])
            #expect(c.status == 202)
            let longId = String(repeating: "d", count: 129)
            #expect(try await bed.request("PUT", bed.devicePath(longId), json: ["provider": "fcm", "token": Tokens.fcm()]).status == 400)
            #expect(try await bed.request("PUT", bed.devicePath(String(repeating: "d", count: 128)), json: ["provider": "fcm", "token": Tokens.fcm()]).status == 202)
            // A header section far over the server's limit is refused, never a 5xx.
            let huge = try? await bed.request("GET", "/health", headers: ["X-Padding": String(repeating: "p", count: 200_000)])
            if let huge { #expect((400..<500).contains(huge.status), "status \(huge.status)") }
        }
    }

    @Test("the per-app queue bound answers 429 for that app only")
    func perAppBound() async throws {
        try await withTestBed(configure: {
            $0.limits.maxQueuedIntentsPerApp = 2
            $0.apps = [.init(code: "EMS12-34567"), .init(code: "EMS98-76543")]
        }) { bed in
            try await bed.addFault(["status": 503, "unlimited": true])
            for i in 0..<2 { #expect(try await bed.request("PUT", bed.devicePath("p\(i)"), json: ["provider": "fcm", "token": Tokens.fcm()]).status == 202) }
            let full = try await bed.request("PUT", bed.devicePath("p9"), json: ["provider": "fcm", "token": Tokens.fcm()])
            #expect(full.status == 429 && full.headers["retry-after"] != nil)
            let other = try await bed.request("PUT", "/v1/apps/EMS98-76543/devices/p9", json: ["provider": "fcm", "token": Tokens.fcm()])
            #expect(other.status == 202)
        }
    }
}
