import Crypto
import Foundation
import Testing
import Webhooks

@Suite("Standard Webhooks signing")
struct SignatureTests {
    /// The example of the Standard Webhooks specification 1.0 (its README, "Signature scheme"): secret, message id,
    /// timestamp and payload, and the signature the spec gives for them.
    @Test("the specification's example signs to the specification's signature")
    func specificationExample() throws {
        let secret = try WebhookSecret.parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").get()
        let headers = StandardWebhooks.headers(
            id: "msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp: 1_614_265_330, body: Array(#"{"test": 2432232314}"#.utf8), secret: secret)
        #expect(headers.map(\.0) == ["webhook-id", "webhook-timestamp", "webhook-signature"])
        #expect(headers[1].1 == "1614265330")
        #expect(headers[2].1 == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
    }

    @Test("random messages: the signature is what HMAC-SHA256 over id.timestamp.body says, and any change breaks it")
    func randomMessages() throws {
        for _ in 0..<200 {
            let key = (0..<Int.random(in: 24...64)).map { _ in UInt8.random(in: 0...255) }
            let id = "msg_" + UUID().uuidString
            let timestamp = Int64.random(in: 1_600_000_000...2_000_000_000)
            let body = (0..<Int.random(in: 0...300)).map { _ in UInt8.random(in: 32...126) }
            let secret = try WebhookSecret.parse("whsec_" + Data(key).base64EncodedString()).get()
            let signature = StandardWebhooks.signature(id: id, timestamp: timestamp, body: body, key: secret.key)
            // Verified here as a receiver would, with CryptoKit's HMAC directly.
            let expected = Data(HMAC<SHA256>.authenticationCode(for: Array("\(id).\(timestamp).".utf8) + body, using: SymmetricKey(data: key)))
            #expect(signature == "v1," + expected.base64EncodedString())
            #expect(StandardWebhooks.signature(id: id, timestamp: timestamp + 1, body: body, key: key) != signature)
            #expect(StandardWebhooks.signature(id: id, timestamp: timestamp, body: body + [32], key: key) != signature)
        }
    }

    @Test("secrets: whsec_ and base64 of at least 24 bytes; the description never shows the key")
    func secrets() {
        #expect(WebhookSecret.parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw") == .failure(.missingPrefix))
        #expect(WebhookSecret.parse("whsec_not base64!") == .failure(.notBase64))
        #expect(WebhookSecret.parse("whsec_" + Data(count: 23).base64EncodedString()) == .failure(.tooShort(23)))
        let ok = try? WebhookSecret.parse("whsec_" + Data(repeating: 1, count: 24).base64EncodedString()).get()
        #expect(ok?.key == Array(repeating: 1, count: 24))
        #expect(ok?.description == "whsec_(24 bytes)")
    }

    @Test("retries: backoff grows to its ceiling, Retry-After is honoured, one last attempt at the message's age, then given up")
    func retries() {
        let policy = WebhookRetry(initialDelayMs: 1000, maxDelayMs: 60_000, maxAgeMs: 3_600_000)
        // Full jitter: the delay is below the attempt's ceiling, which doubles up to the maximum.
        for attempts in 1...30 {
            let ceiling = min(60_000, 1000 << min(attempts - 1, 40))
            guard case .retry(let at) = policy.after(attempts: attempts, createdAtMs: 0, nowMs: 0, retryAfterMs: nil, jitter: 0.999) else {
                Issue.record("gave up at attempt \(attempts)")
                continue
            }
            #expect(at >= 1 && at <= Int64(ceiling), "attempt \(attempts): \(at)")
        }
        #expect(policy.after(attempts: 1, createdAtMs: 0, nowMs: 0, retryAfterMs: 30_000, jitter: 0) == .retry(atMs: 30_000))
        // A Retry-After past the message's age: one last attempt at its end, then given up.
        #expect(policy.after(attempts: 3, createdAtMs: 0, nowMs: 3_599_000, retryAfterMs: 5000, jitter: 0.5) == .retry(atMs: 3_600_000))
        #expect(policy.after(attempts: 4, createdAtMs: 0, nowMs: 3_600_000, retryAfterMs: 5000, jitter: 0.5) == .giveUp)
        #expect(policy.after(attempts: 1000, createdAtMs: 0, nowMs: 10_000, retryAfterMs: nil, jitter: 0.5) == .retry(atMs: 40_000))
    }
}
