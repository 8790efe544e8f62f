import Crypto
import PushTokens
import TestSupport

/// A valid token of one provider with the textual variants clients send, and the answer every
/// variant must give.
struct GeneratedToken {
    var provider: String
    var variants: [TokenInput]
    var pushToken: String
    var tokenHash: String
}

/// Builds random valid tokens for every built-in provider. Expected answers are computed here from
/// the doc's rules, not by the library.
struct TokenGenerator {
    var random: SplitMix64

    static let webHosts: [String: (host: String, path: String)] = [
        "chrome": ("fcm.googleapis.com", "/fcm/send/"),
        "firefox": ("updates.push.services.mozilla.com", "/wpush/v2/"),
        "safari": ("web.push.apple.com", "/"),
        "edge": ("wns2-by3p.notify.windows.com", "/w/?token="),
    ]

    mutating func token(for provider: String) -> GeneratedToken {
        switch provider {
        case "apns": apns()
        case "fcm": opaque(provider: "fcm", value: fcmToken())
        case "hms": opaque(provider: "hms", value: random.string(Int.random(in: 40...300, using: &random), from: Alphabets.tokenSafe))
        case "safari" where random.bool(): safariLegacy()
        default: webPush(provider: provider)
        }
    }

    mutating func fcmToken() -> String {
        random.string(22, from: Alphabets.tokenSafe) + ":APA91b" + random.string(Int.random(in: 120...300, using: &random), from: Alphabets.tokenSafe)
    }

    /// Common wrappers of a string token: quoted, padded with white space, or given as a JSON string.
    mutating func wrapped(_ text: String) -> [TokenInput] {
        let spaces = [" ", "\t", "\n", "\r\n", "  \u{00A0}"]
        let space = spaces.randomElement(using: &random)!
        return [
            .text(text), .json(.string(text)), .text("\"" + text + "\""),
            .text(space + text + space), .json(.string(space + "\"" + text + "\"" + space)),
        ]
    }

    mutating func apns() -> GeneratedToken {
        let count = [32, 32, 32, 54, 80, Int.random(in: 32...200, using: &random)].randomElement(using: &random)!
        let bytes = random.bytes(count)
        let hex = Encode.hex(bytes)
        var texts = [
            hex, Encode.hex(bytes, uppercase: true), Encode.nsDataDescription(bytes),
            String(Encode.nsDataDescription(bytes).dropFirst().dropLast()),
        ]
        for urlSafe in [false, true] {
            for padded in [false, true] { texts.append(Encode.base64(bytes, urlSafe: urlSafe, padded: padded)) }
        }
        var variants: [TokenInput] = []
        for text in texts { variants += wrapped(text) }
        return GeneratedToken(provider: "apns", variants: variants, pushToken: hex, tokenHash: pushTokenHash(namespace: "apns", key: hex))
    }

    mutating func safariLegacy() -> GeneratedToken {
        let bytes = random.bytes(32)
        let hex = Encode.hex(bytes)
        let upper = Encode.hex(bytes, uppercase: true)
        var variants = wrapped(upper) + wrapped(hex)
        variants.append(.json(.object(["deviceToken": .string(upper), "websitePushId": .string("web.com.example.news")])))
        variants.append(.json(.object(["deviceToken": .string(hex)])))
        variants.append(.text(#"{"deviceToken": "\#(upper)", "websitePushId": "web.com.example"}"#))
        return GeneratedToken(provider: "safari", variants: variants, pushToken: hex, tokenHash: pushTokenHash(namespace: "apns", key: hex))
    }

    mutating func opaque(provider: String, value: String) -> GeneratedToken {
        GeneratedToken(provider: provider, variants: wrapped(value), pushToken: value, tokenHash: pushTokenHash(namespace: provider, key: value))
    }

    mutating func webPush(provider: String) -> GeneratedToken {
        let (host, pathPrefix) = Self.webHosts[provider]!
        let pathToken = random.string(Int.random(in: 20...300, using: &random), from: Alphabets.tokenSafe + ":%")
        let endpointTail = pathPrefix + pathToken
        let endpoint = "https://" + host + endpointTail
        let publicKey = Array(P256.KeyAgreement.PrivateKey().publicKey.x963Representation)
        let auth = random.bytes(16)
        let expiration: Int64? = random.bool() ? nil : Int64.random(in: 0...4_102_444_800_000, using: &random)
        let expirationText = expiration.map(String.init) ?? "null"
        let p256dhCanonical = Encode.base64(publicKey, urlSafe: true, padded: false)
        let authCanonical = Encode.base64(auth, urlSafe: true, padded: false)
        let canonical = #"{"endpoint":"\#(endpoint)","expirationTime":\#(expirationText),"keys":{"p256dh":"\#(p256dhCanonical)","auth":"\#(authCanonical)"}}"#

        var variants: [TokenInput] = []
        let endpointForms = [
            endpoint, "HTTPS://" + host.uppercased() + endpointTail, "https://" + host + ":443" + endpointTail,
            "Https://" + host.capitalized + ":443" + endpointTail,
        ]
        for endpointForm in endpointForms {
            let urlSafe = random.bool()
            let padded = random.bool()
            let p256dh = Encode.base64(publicKey, urlSafe: urlSafe, padded: padded)
            let authText = Encode.base64(auth, urlSafe: urlSafe, padded: padded)
            let expirationValue: JSONValue = expiration.map { .integer($0) } ?? .null
            var members: [String: JSONValue] = [
                "endpoint": .string(endpointForm),
                "keys": .object(["p256dh": .string(p256dh), "auth": .string(authText)]),
                "extra": .string("ignored"),
            ]
            if expiration != nil || random.bool() { members["expirationTime"] = expirationValue }
            variants.append(.json(.object(members)))
            let text = #"{ "keys": { "auth": "\#(authText)", "p256dh": "\#(p256dh)" }, "expirationTime": \#(expirationText), "endpoint": "\#(endpointForm.replacingOccurrences(of: "/", with: "\\/"))" }"#
            variants.append(.text(text))
            variants.append(.text("\n " + text + " \n"))
            variants.append(.json(.string(text)))
            variants.append(.text(jsonQuoted(text)))
        }
        return GeneratedToken(
            provider: provider, variants: variants, pushToken: canonical, tokenHash: pushTokenHash(namespace: "webpush", key: endpoint))
    }

    /// `text` as a JSON string literal (the double-encoded form some clients store).
    func jsonQuoted(_ text: String) -> String {
        "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }
}
