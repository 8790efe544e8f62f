import Crypto
import Foundation
import PushbridgeConfig
import Testing
import Webhooks

/// Webhooks from the real server to a real receiver on loopback, on SQLite and on PostgreSQL (when
/// `PUSHBRIDGE_TEST_POSTGRES_URL` names a server). Every signature is checked by `verify` below, written from the
/// Standard Webhooks specification and not with the bridge's signing code.
@Suite("Webhooks", .serialized)
struct WebhookTests {
    static let secretText = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

    /// Standard Webhooks 1.0, verification as a receiver does it: the key is the base64 after `whsec_`; the signed
    /// content is `id.timestamp.body`; the header holds space-separated `v1,<base64 HMAC-SHA256>` signatures.
    static func verify(_ d: WebhookReceiver.Delivery, secret: String = secretText) -> Bool {
        guard let key = Data(base64Encoded: String(secret.dropFirst("whsec_".count))) else { return false }
        var content = Data("\(d.id).\(d.timestamp).".utf8)
        content.append(d.body)
        let expected = Data(HMAC<SHA256>.authenticationCode(for: content, using: SymmetricKey(data: key))).base64EncodedString()
        return d.signature.split(separator: " ").contains { $0 == "v1,\(expected)" }
    }

    static func withBed(
        _ store: String, receiver: WebhookReceiver, events: Set<WebhookEvent>? = nil,
        configure more: (inout BridgeConfiguration) -> Void = { _ in }, _ body: (TestBed) async throws -> Void
    ) async throws {
        try await InvariantRegressionTests.withBed(store, configure: { c in
            guard case .success(let secret) = WebhookSecret.parse(secretText) else { return }
            c.apps[0].webhooks = [BridgeConfiguration.Webhook(url: receiver.url, secret: secret, events: events)]
            c.webhooks.retryInitialDelayMs = 100
            c.webhooks.retryMaxDelayMs = 1000
            c.webhooks.timeoutSeconds = 2
            more(&c)
        }, body)
    }

    /// Each device's events in the order they first arrived (a retry repeats an id; at-least-once).
    static func byDevice(_ deliveries: [WebhookReceiver.Delivery]) -> [String: [String]] {
        var seen: Set<String> = []
        var out: [String: [String]] = [:]
        for d in deliveries where seen.insert(d.id).inserted {
            let reason = (d.data["reason"] as? String).map { ":" + $0 } ?? ""
            out[d.data["deviceId"] as? String ?? "?", default: []].append(d.type + reason)
        }
        return out
    }

    @Test("every event type reaches a real receiver, signed, in order per device, with the status and never a token", arguments: InvariantRegressionTests.stores)
    func everyEvent(store: String) async throws {
        let receiver = try await WebhookReceiver()
        defer { Task { await receiver.stop() } }
        try await Self.withBed(store, receiver: receiver) { bed in
            let (t1, t2, t3) = (Tokens.fcm(), Tokens.fcm(), Tokens.fcm())
            // a: registered, then its token removed, then the device deleted.
            _ = try await bed.request("PUT", bed.devicePath("a"), json: ["provider": "fcm", "token": t1])
            let registeredA = try await bed.waitForState("a", "registered")
            _ = try await bed.request("DELETE", bed.devicePath("a") + "/push-token")
            try await bed.waitForState("a", "unregistered")
            // b: registered, then its token moves to c; c: registered, then the token reported dead.
            _ = try await bed.request("PUT", bed.devicePath("b"), json: ["provider": "fcm", "token": t2])
            try await bed.waitForState("b", "registered")
            _ = try await bed.request("PUT", bed.devicePath("c"), json: ["provider": "fcm", "token": t2])
            try await bed.waitForState("c", "registered")
            try await bed.waitForState("b", "unregistered")
            #expect(try await bed.request("POST", "/v1/apps/\(TestBed.app)/tokens/invalidate", json: ["provider": "fcm", "token": t2]).status == 202)
            try await bed.waitForState("c", "unregistered")
            // d: ME refuses its token for good.
            try await bed.addFault(["mode": "status", "status": 400, "method": "PUT", "path": "/push-token", "unlimited": true])
            _ = try await bed.request("PUT", bed.devicePath("d"), json: ["provider": "fcm", "token": t3])
            try await bed.waitFor("d") { ($0["state"] as? String) == "failed" }
            try await bed.clearFaults()
            // a: forgotten.
            #expect(try await bed.request("DELETE", bed.devicePath("a")).status == 202)
            try await bed.waitFor("a") { ($0["status"] as? Int) == 404 }

            let expected: [String: [String]] = [
                "a": ["device.registered", "device.unregistered:removed", "device.deleted"],
                "b": ["device.registered", "device.unregistered:moved"],
                "c": ["device.registered", "device.unregistered:invalidated"],
                "d": ["device.failed"],
            ]
            let deliveries = try await receiver.waitFor { Self.byDevice($0) == expected }
            #expect(Self.byDevice(deliveries) == expected)
            let now = Date().timeIntervalSince1970
            for d in deliveries {
                #expect(Self.verify(d), "signature of \(d.id) does not verify")
                #expect(!Self.verify(d, secret: "whsec_" + Data(repeating: 7, count: 24).base64EncodedString()))
                #expect(d.id.hasPrefix("msg_"))
                #expect(abs((Double(d.timestamp) ?? 0) - now) < 300)
                #expect(d.contentType == "application/json")
                let text = String(decoding: d.body, as: UTF8.self)
                for token in [t1, t2, t3] { #expect(!text.contains(token)) }
                #expect((d.json["timestamp"] as? String)?.hasSuffix("Z") == true)
                #expect(d.data["appCode"] as? String == TestBed.app)
                #expect(d.data["deduplicated"] == nil)
            }
            #expect(Set(deliveries.map(\.id)).count == deliveries.count, "nothing was retried here, so every id is new")
            // The registered event carries the status as GET returned it then.
            let first = try #require(deliveries.first { $0.type == "device.registered" && $0.data["deviceId"] as? String == "a" })
            #expect(first.data["tokenHash"] as? String == registeredA["tokenHash"] as? String)
            #expect(first.data["state"] as? String == "registered")
            #expect(first.data["clientId"] as? String == registeredA["clientId"] as? String)
            let failed = try #require(deliveries.first { $0.type == "device.failed" })
            #expect(failed.data["state"] as? String == "failed")
            #expect((failed.data["lastError"] as? [String: Any])?["status"] as? Int == 400)
            let deleted = try #require(deliveries.first { $0.type == "device.deleted" })
            #expect(deleted.data.keys.sorted() == ["appCode", "deviceId"])
        }
    }

    @Test("the reason is the removal's, though other intents were queued behind it; a second failure is told again", arguments: InvariantRegressionTests.stores)
    func reasonsAndRepeatedFailures(store: String) async throws {
        let receiver = try await WebhookReceiver()
        defer { Task { await receiver.stop() } }
        try await Self.withBed(store, receiver: receiver) { bed in
            // m's token moves to n while m has events queued behind a slow ME: the release jumps the queue, the
            // events go after it, and the commit that ends m unregistered is the events'.
            let token = Tokens.fcm()
            _ = try await bed.request("PUT", bed.devicePath("m"), json: ["provider": "fcm", "token": token])
            try await bed.waitForState("m", "registered")
            try await bed.addFault(["mode": "status", "status": 503, "method": "POST", "path": "/client/events", "count": 4])
            _ = try await bed.request("POST", bed.devicePath("m") + "/events", json: ["events": [["name": "opened"]]])
            _ = try await bed.request("PUT", bed.devicePath("n"), json: ["provider": "fcm", "token": token])
            try await bed.waitForState("n", "registered")
            try await bed.waitForState("m", "unregistered")
            // p fails, recovers with a new token, and fails again: two device.failed.
            try await bed.addFault(["mode": "status", "status": 400, "method": "PUT", "path": "/push-token", "count": 1])
            _ = try await bed.request("PUT", bed.devicePath("p"), json: ["provider": "fcm", "token": Tokens.fcm()])
            try await bed.waitFor("p") { ($0["state"] as? String) == "failed" }
            _ = try await bed.request("PUT", bed.devicePath("p") + "/push-token", json: ["provider": "fcm", "token": Tokens.fcm()])
            try await bed.waitForState("p", "registered")
            try await bed.addFault(["mode": "status", "status": 400, "method": "PUT", "path": "/push-token", "count": 1])
            _ = try await bed.request("PUT", bed.devicePath("p") + "/push-token", json: ["provider": "fcm", "token": Tokens.fcm()])
            try await bed.waitFor("p") { ($0["state"] as? String) == "failed" }
            let expected = [
                "m": ["device.registered", "device.unregistered:moved"],
                "n": ["device.registered"],
                "p": ["device.failed", "device.registered", "device.failed"],
            ]
            let deliveries = try await receiver.waitFor { Self.byDevice($0) == expected }
            #expect(Self.byDevice(deliveries) == expected)
        }
    }

    @Test("a device that goes pending for events and back says nothing again; a new token says registered again", arguments: InvariantRegressionTests.stores)
    func onlyChanges(store: String) async throws {
        let receiver = try await WebhookReceiver()
        defer { Task { await receiver.stop() } }
        try await Self.withBed(store, receiver: receiver) { bed in
            _ = try await bed.request("PUT", bed.devicePath("e"), json: ["provider": "fcm", "token": Tokens.fcm()])
            try await bed.waitForState("e", "registered")
            try await receiver.waitFor { $0.count == 1 }
            let events = try await bed.request("POST", bed.devicePath("e") + "/events", json: ["events": [["name": "opened"]]])
            #expect(events.status == 202)
            try await bed.waitFor("e") { ($0["pending"] as? Int) == 0 && ($0["state"] as? String) == "registered" }
            let second = Tokens.fcm()
            _ = try await bed.request("PUT", bed.devicePath("e") + "/push-token", json: ["provider": "fcm", "token": second])
            let rotated = try await bed.waitFor("e") { ($0["pending"] as? Int) == 0 && ($0["state"] as? String) == "registered" }
            let deliveries = try await receiver.waitFor { $0.count >= 2 }
            try await Task.sleep(for: .milliseconds(500))  // several delivery polls: nothing more comes
            #expect(receiver.deliveries.count == 2)
            #expect(deliveries.map(\.type) == ["device.registered", "device.registered"])
            #expect(deliveries.last?.data["tokenHash"] as? String == rotated["tokenHash"] as? String)
        }
    }

    @Test("a receiver answering 503 with Retry-After gets the same message again, same webhook-id, until it takes it; the next waits for it", arguments: InvariantRegressionTests.stores)
    func retries(store: String) async throws {
        let receiver = try await WebhookReceiver()
        defer { Task { await receiver.stop() } }
        receiver.answer(next: [.status(503, retryAfter: "1"), .status(500, retryAfter: nil)])
        try await Self.withBed(store, receiver: receiver) { bed in
            _ = try await bed.request("PUT", bed.devicePath("f"), json: ["provider": "fcm", "token": Tokens.fcm()])
            try await bed.waitForState("f", "registered")
            _ = try await bed.request("DELETE", bed.devicePath("f") + "/push-token")
            try await bed.waitForState("f", "unregistered")
            let deliveries = try await receiver.waitFor { Self.byDevice($0)["f"]?.count == 2 }
            #expect(Self.byDevice(deliveries)["f"] == ["device.registered", "device.unregistered:removed"])
            // The first message three times (503, 500, then taken), the second after it was taken.
            #expect(deliveries.count == 4)
            #expect(Set(deliveries.prefix(3).map(\.id)).count == 1)
            #expect(deliveries.prefix(3).allSatisfy { $0.body == deliveries[0].body })
            #expect(deliveries[3].id != deliveries[0].id)
            // Retry-After: 1 was honoured between the first and the second attempt.
            let t0 = Double(deliveries[0].timestamp) ?? 0
            let t1 = Double(deliveries[1].timestamp) ?? 0
            #expect(t1 - t0 >= 1)
            #expect(deliveries.allSatisfy { Self.verify($0) })
            let metrics = try await bed.request("GET", "/metrics")
            let text = String(decoding: metrics.body, as: UTF8.self)
            #expect(text.contains(#"pushbridge_webhook_deliveries_total{outcome="failed"} 2"#))
            #expect(text.contains(#"pushbridge_webhook_deliveries_total{outcome="delivered"} 2"#))
        }
    }

    @Test("an endpoint that never answers holds back no ME work; the event filter sends only what it names")
    func deadEndpointAndFilter() async throws {
        let receiver = try await WebhookReceiver()
        defer { Task { await receiver.stop() } }
        receiver.answer(otherwise: .never)
        try await Self.withBed("sqlite", receiver: receiver, events: [.failed]) { bed in
            // Only device.failed is wanted: registrations make no message at all.
            for i in 0..<20 {
                _ = try await bed.request("PUT", bed.devicePath("g\(i)"), json: ["provider": "fcm", "token": Tokens.fcm()])
            }
            for i in 0..<20 { try await bed.waitForState("g\(i)", "registered") }
            try await bed.addFault(["mode": "status", "status": 400, "method": "PUT", "path": "/push-token", "unlimited": true])
            for i in 0..<3 {
                _ = try await bed.request("PUT", bed.devicePath("h\(i)"), json: ["provider": "fcm", "token": Tokens.fcm()])
            }
            for i in 0..<3 { try await bed.waitFor("h\(i)") { ($0["state"] as? String) == "failed" } }
            try await bed.clearFaults()
            // The endpoint holds every request it gets; ME work goes on beside it.
            let held = try await receiver.waitFor { $0.count >= 3 }
            #expect(held.count >= 3, "the three failures reached the endpoint")
            for i in 20..<30 {
                _ = try await bed.request("PUT", bed.devicePath("g\(i)"), json: ["provider": "fcm", "token": Tokens.fcm()])
            }
            for i in 20..<30 { try await bed.waitForState("g\(i)", "registered") }
            #expect(receiver.deliveries.allSatisfy { $0.type == "device.failed" })
        }
    }

    @Test("at its bound the outbox takes no new message, and /ready says so while it stays ready; drained, it takes them again")
    func backlogBound() async throws {
        let receiver = try await WebhookReceiver()
        defer { Task { await receiver.stop() } }
        receiver.answer(otherwise: .status(503, retryAfter: nil))
        try await Self.withBed("sqlite", receiver: receiver, configure: { $0.webhooks.maxBacklog = 2 }) { bed in
            func ready() async throws -> TestBed.Answer { try await bed.request("GET", "/ready") }
            #expect(try await ready().json["checks"] as? [String: String] == ["storage": "ok", "queue": "ok", "workers": "ok", "webhooks": "ok"])
            for i in 0..<2 {
                _ = try await bed.request("PUT", bed.devicePath("k\(i)"), json: ["provider": "fcm", "token": Tokens.fcm()])
                try await bed.waitForState("k\(i)", "registered")
            }
            // Two messages wait: the bound. /ready says so within its second, and still answers 200.
            var answer = try await ready()
            for _ in 0..<100 where (answer.json["checks"] as? [String: String])?["webhooks"] != "backlog full" {
                try await Task.sleep(for: .milliseconds(100))
                answer = try await ready()
            }
            #expect(answer.status == 200)
            #expect((answer.json["checks"] as? [String: String])?["webhooks"] == "backlog full")
            // A state change now makes no message.
            _ = try await bed.request("PUT", bed.devicePath("k2"), json: ["provider": "fcm", "token": Tokens.fcm()])
            try await bed.waitForState("k2", "registered")
            receiver.answer(otherwise: .status(204, retryAfter: nil))
            // Drained: /ready says ok again once the backlog gauge reads it (every second).
            for _ in 0..<100 where (try await ready().json["checks"] as? [String: String])?["webhooks"] != "ok" {
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect((try await ready().json["checks"] as? [String: String])?["webhooks"] == "ok")
            let devices = Set(receiver.deliveries.compactMap { $0.data["deviceId"] as? String })
            #expect(devices == ["k0", "k1"], "k2's registration came while the outbox was full: no message")
            // Below the bound again: the next change is told.
            _ = try await bed.request("DELETE", bed.devicePath("k2") + "/push-token")
            let told = try await receiver.waitFor { $0.contains { $0.data["deviceId"] as? String == "k2" } }
            #expect(told.last?.type == "device.unregistered")
        }
    }
}
