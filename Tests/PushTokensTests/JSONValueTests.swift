import Foundation
import PushTokens
import Testing

@Suite("JSONValue and the token hash")
struct JSONValueTests {
    @Test("Codable decoding keeps integers apart from doubles and booleans")
    func decoding() throws {
        let text = #"{"i": 1700000000000, "d": 1.5, "b": true, "n": null, "s": "x", "a": [1, "y"], "big": 1e300}"#
        let value = try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
        #expect(value == .object([
            "i": .integer(1_700_000_000_000), "d": .double(1.5), "b": .bool(true), "n": .null, "s": .string("x"),
            "a": .array([.integer(1), .string("y")]), "big": .double(1e300),
        ]))
        let again = try JSONDecoder().decode(JSONValue.self, from: JSONEncoder().encode(value))
        #expect(again == value)
    }

    @Test("tokenHash is SHA-256 over the documented framing")
    func hash() {
        // Vector values from push-tokens.json.
        #expect(pushTokenHash(namespace: "apns", key: "6b596ab0b60568ef8a3b9baa0617dcd84e7f163138789841ebfcd9d029de6055")
            == "667cf0d6341a66e2605859d1a553c921980a84485c0885b5e4bae879fc56ce6e")
        #expect(pushTokenHash(namespace: "apns", scope: "app", key: "k") != pushTokenHash(namespace: "apns", key: "k"))
        #expect(pushTokenHash(namespace: "fcm", key: "k") != pushTokenHash(namespace: "hms", key: "k"))
    }

    @Test("endpoints are written as JSON.stringify writes them: '/' unescaped, '\"' and '\\\\' escaped")
    func escaping() throws {
        // A JSON-escaped '/' in the input is the same endpoint; the output never escapes it.
        let text = #"{"endpoint":"https:\/\/fcm.googleapis.com\/fcm\/send\/a\u0062c","keys":{"p256dh":"\#(Samples.p256dh)","auth":"\#(Samples.auth)"}}"#
        let token = try ProviderRegistry.builtIn.normalize(provider: "chrome", input: .text(text))
        #expect(token.pushToken.hasPrefix(#"{"endpoint":"https://fcm.googleapis.com/fcm/send/abc","expirationTime":null,"#))
    }

    @Test("expirationTime integers are kept exactly")
    func expiration() throws {
        let input = Samples.subscription(expirationTime: .integer(1_735_689_600_123))
        let token = try ProviderRegistry.builtIn.normalize(provider: "chrome", input: input)
        #expect(token.subscription?.expirationTime == 1_735_689_600_123)
        #expect(token.pushToken.contains(#""expirationTime":1735689600123,"#))
    }
}
