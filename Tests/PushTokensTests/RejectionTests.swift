import PushTokens
import Testing

/// One expected rejection: which rule, a phrase the reason must contain (and any more it must also
/// contain), and the provider it names.
struct RejectionCase: Sendable, CustomTestStringConvertible {
    var rule: String
    var provider: String
    var input: TokenInput
    var environment: String? = nil
    var phrase: String
    var suggested: String? = nil
    var alsoContains: [String] = []

    var testDescription: String { "\(rule) (\(provider))" }
}

enum Samples {
    static let apnsHex = "6b596ab0b60568ef8a3b9baa0617dcd84e7f163138789841ebfcd9d029de6055"
    static let fcm = "JZyTltNIECk:APA91bgVWGbaTJpquZf9Y0dOK886mbM_fTJNznFmtbNiW7UVFIEcX_lb01ABjBmDC3SYUC49RsQmeQWDFHbehmeHnRDYsiN1d91pIFvEB_ne6MjJx0VFR0mYOT2uqNLtSGkYLh-HBu5g0kxEjs"
    static let chromeEndpoint = "https://fcm.googleapis.com/fcm/send/67LkSmJLdIL:APA91btg7880IVIa5phDB2ath55dX7DV2OWfc"
    static let mozillaEndpoint = "https://updates.push.services.mozilla.com/wpush/v2/gCp3FBc5Ce4hoZhFv42oUqAJDJA"
    static let p256dh = "BJfXWzWtjEC1UZy79YUY6xixphvsoG4ZDp5y5vYqaxndZNio8sqoFLlqiCxnFGdU-uF6UYTLw7Ay9-rcRn2z3cU"
    static let auth = "DamkZBIffrMd-1HdsxvVOg"
    /// Ids of push wrappers that apps send instead of the native token.
    static let expoToken = "ExponentPushToken[xxxxxxxxxxxxxxxxxxxxxx]"
    static let expoPushToken = "ExpoPushToken[N1kQ3r8H2sX0pLmZ7aB4cD]"
    static let uuid = "8f14e45f-ceea-467f-a0e6-7c3b8d1b2c9a"  // OneSignal subscription ids are lower case
    static let uuidUpper = "3F2504E0-4F89-41D3-9A0C-0305E82C3301"  // Foundation's UUID().uuidString

    /// A subscription object; `endpoint` nil leaves it out.
    static func subscription(
        _ endpoint: String? = chromeEndpoint, p256dh: String = p256dh, auth: String = auth, expirationTime: JSONValue = .null
    ) -> TokenInput {
        var members: [String: JSONValue] = [
            "expirationTime": expirationTime, "keys": .object(["p256dh": .string(p256dh), "auth": .string(auth)]),
        ]
        if let endpoint { members["endpoint"] = .string(endpoint) }
        return .json(.object(members))
    }

    static func subscriptionText(_ endpoint: String = chromeEndpoint) -> String {
        #"{"endpoint":"\#(endpoint)","expirationTime":null,"keys":{"p256dh":"\#(p256dh)","auth":"\#(auth)"}}"#
    }

    static func quoted(_ text: String) -> String {
        "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }
}

@Suite("Rejections: rule, reason and suggested provider")
struct RejectionTests {
    typealias R = TokenRejection.Rule
    typealias S = Samples

    static let cases: [RejectionCase] = [
        RejectionCase(rule: R.unknownProvider, provider: "blackberry", input: .text(S.apnsHex), phrase: "known providers are", suggested: "apns"),
        RejectionCase(rule: R.inputTooLarge, provider: "hms", input: .text(String(repeating: "a", count: 20_000)), phrase: "bytes"),
        RejectionCase(rule: R.empty, provider: "apns", input: .text(" \t\n "), phrase: "empty"),
        RejectionCase(rule: R.empty, provider: "hms", input: .text(""), phrase: "empty"),
        RejectionCase(rule: R.placeholderLiteral, provider: "apns", input: .text("undefined"), phrase: "placeholder"),
        RejectionCase(rule: R.placeholderLiteral, provider: "fcm", input: .text("\"null\""), phrase: "placeholder"),
        RejectionCase(rule: R.placeholderLiteral, provider: "chrome", input: .json(.null), phrase: "null"),
        RejectionCase(rule: R.wrongInputType, provider: "apns", input: S.subscription(S.mozillaEndpoint), phrase: "got a JSON object", suggested: "firefox"),
        RejectionCase(rule: R.wrongInputType, provider: "chrome", input: .json(.integer(42)), phrase: "got a JSON number"),
        RejectionCase(rule: R.invalidEnvironment, provider: "apns", input: .text(S.apnsHex), environment: "development", phrase: "'production' or 'sandbox'"),
        RejectionCase(rule: R.elidedDescription, provider: "apns", input: .text("{length = 32, bytes = 0x6b596ab0 b60568ef ... 29de6055 }"), phrase: "elided"),
        RejectionCase(rule: R.hexPrefix, provider: "apns", input: .text("0x" + S.apnsHex), phrase: "'0x' prefix"),
        RejectionCase(rule: R.hexOddLength, provider: "apns", input: .text(String(S.apnsHex.dropLast())), phrase: "odd number of digits"),
        RejectionCase(rule: R.invalidBase64, provider: "apns", input: .text("Pimm0tcLx/GlQwYMSq61Fp4ntPas36S0KdPhel2loM-c"), phrase: "base64"),
        RejectionCase(rule: R.invalidCharacters, provider: "apns", input: .text("6b596ab0b6.568ef8a3b9baa0617dcd84e7f163138789841ebfcd9d029de6055"), phrase: "neither hex digits nor base64"),
        RejectionCase(rule: R.invalidCharacters, provider: "fcm", input: .text(#""\"\#(S.fcm)\"""#), phrase: "quote or backslash"),
        RejectionCase(rule: R.tooShort, provider: "apns", input: .text(String(S.apnsHex.prefix(32))), phrase: "at least 32"),
        RejectionCase(rule: R.tooLong, provider: "apns", input: .text(String(repeating: "ab", count: 201)), phrase: "200-byte maximum"),
        RejectionCase(rule: R.tooLong, provider: "fcm", input: .text(String(repeating: "x", count: 4097)), phrase: "more than the 4096"),
        RejectionCase(rule: R.looksLikeURL, provider: "fcm", input: .text(S.chromeEndpoint), phrase: "URL", suggested: "chrome"),
        RejectionCase(rule: R.looksLikeURL, provider: "apns", input: .text("https://api.push.apple.com/3/device/" + S.apnsHex), phrase: "provider-API URL"),
        RejectionCase(rule: R.looksLikeFCMToken, provider: "apns", input: .text(S.fcm), phrase: "FCM", suggested: "fcm"),
        RejectionCase(rule: R.looksLikeAPNsToken, provider: "fcm", input: .text(S.apnsHex), phrase: "APNs device token", suggested: "apns"),
        RejectionCase(
            rule: R.looksLikeExpoPushToken, provider: "fcm", input: .text(S.expoToken),
            phrase: "Expo push token (ExponentPushToken[...]), not an FCM registration token",
            alsoContains: ["send the device's native FCM token", "getDevicePushTokenAsync"]),
        RejectionCase(
            rule: R.looksLikeExpoPushToken, provider: "hms", input: .text(" \t" + S.expoToken + "\n"),
            phrase: "Expo push token", alsoContains: ["not an HMS push token", "send the device's native HMS push token"]),
        RejectionCase(
            rule: R.looksLikeExpoPushToken, provider: "apns", input: .text(S.quoted(S.expoToken)),
            phrase: "Expo push token", alsoContains: ["not an APNs device token", "send the device's native APNs device token"]),
        RejectionCase(
            rule: R.looksLikeExpoPushToken, provider: "fcm", input: .json(.string(S.expoPushToken)),
            phrase: "Expo push token (ExpoPushToken[...])", alsoContains: ["send the device's native FCM token"]),
        RejectionCase(
            rule: R.looksLikeExpoPushToken, provider: "apns", input: .text(S.expoPushToken), environment: "production",
            phrase: "Expo push token (ExpoPushToken[...])", alsoContains: ["send the device's native APNs device token"]),
        RejectionCase(
            rule: R.looksLikeUUID, provider: "fcm", input: .text(S.uuid), phrase: "UUID",
            alsoContains: ["OneSignal", "Airship", "never an FCM registration token", "send the device's native FCM token"]),
        RejectionCase(
            rule: R.looksLikeUUID, provider: "fcm", input: .text(S.uuidUpper), phrase: "UUID",
            alsoContains: ["OneSignal", "Airship", "send the device's native FCM token"]),
        RejectionCase(
            rule: R.looksLikeUUID, provider: "hms", input: .text(S.uuid), phrase: "UUID",
            alsoContains: ["OneSignal", "Airship", "never an HMS push token", "send the device's native HMS push token"]),
        RejectionCase(
            rule: R.looksLikeUUID, provider: "hms", input: .text(S.quoted(S.uuidUpper)), phrase: "UUID",
            alsoContains: ["OneSignal", "Airship", "send the device's native HMS push token"]),
        RejectionCase(
            rule: R.looksLikeUUID, provider: "apns", input: .text(S.uuid), phrase: "UUID",
            alsoContains: ["OneSignal", "Airship", "never an APNs device token", "send the device's native APNs device token"]),
        RejectionCase(
            rule: R.looksLikeUUID, provider: "apns", input: .text("  " + S.uuidUpper + " "), environment: "sandbox", phrase: "UUID",
            alsoContains: ["OneSignal", "Airship", "send the device's native APNs device token"]),
        RejectionCase(rule: R.innerWhitespace, provider: "hms", input: .text("abc def"), phrase: "white space inside"),
        RejectionCase(rule: R.controlCharacter, provider: "fcm", input: .text("fWHTYqtR9bTgvpo5hqJv4m:APA91b6\u{0}5whpAENQ9UXL630"), phrase: "control character"),
        RejectionCase(rule: R.nonASCII, provider: "fcm", input: .text("fWHTYqtR9bTgvpo5hqJv4m:APA91bé"), phrase: "non-ASCII"),
        RejectionCase(rule: R.malformedJSON, provider: "chrome", input: .text(#"{"endpoint": "https://fcm.googleapis.com/fcm/send/abc", "#), phrase: "not valid JSON"),
        RejectionCase(rule: R.tooDeeplyEncoded, provider: "chrome", input: .text(S.quoted(S.quoted(S.subscriptionText()))), phrase: "more than twice"),
        RejectionCase(rule: R.bareEndpoint, provider: "chrome", input: .text(S.chromeEndpoint), phrase: "only an endpoint"),
        RejectionCase(rule: R.notASubscription, provider: "chrome", input: .text(S.fcm), phrase: "PushSubscription", suggested: "fcm"),
        RejectionCase(rule: R.notASubscription, provider: "edge", input: .text(S.apnsHex), phrase: "PushSubscription", suggested: "apns"),
        RejectionCase(rule: R.missingEndpoint, provider: "chrome", input: S.subscription(nil), phrase: "no \"endpoint\""),
        RejectionCase(rule: R.missingKeys, provider: "chrome", input: .json(.object(["endpoint": .string(S.chromeEndpoint)])), phrase: "lacks \"keys\""),
        RejectionCase(rule: R.endpointTooLong, provider: "chrome", input: S.subscription(S.chromeEndpoint + String(repeating: "a", count: 5000)), phrase: "more than the 4096"),
        RejectionCase(rule: R.endpointMalformed, provider: "chrome", input: S.subscription("fcm.googleapis.com/fcm/send/abc"), phrase: "not a valid https URL"),
        RejectionCase(rule: R.endpointMalformed, provider: "chrome", input: S.subscription("https:///fcm/send/abc"), phrase: "not a host name"),
        RejectionCase(rule: R.endpointNotHTTPS, provider: "chrome", input: S.subscription("http://fcm.googleapis.com/fcm/send/abc"), phrase: "always https"),
        RejectionCase(rule: R.endpointUserinfo, provider: "chrome", input: S.subscription("https://user:pw@fcm.googleapis.com/fcm/send/abc"), phrase: "user information"),
        RejectionCase(rule: R.endpointFragment, provider: "chrome", input: S.subscription(S.chromeEndpoint + "#x"), phrase: "fragment"),
        RejectionCase(rule: R.endpointPortNotAllowed, provider: "chrome", input: S.subscription("https://fcm.googleapis.com:8443/fcm/send/abc"), phrase: "port '8443'"),
        RejectionCase(rule: R.endpointIPLiteral, provider: "chrome", input: S.subscription("https://127.0.0.1/fcm/send/abc"), phrase: "IP address"),
        RejectionCase(rule: R.endpointIPLiteral, provider: "chrome", input: S.subscription("https://[::1]/fcm/send/abc"), phrase: "IP address"),
        RejectionCase(rule: R.endpointIPLiteral, provider: "chrome", input: S.subscription("https://127.1/fcm/send/abc"), phrase: "IP address"),
        RejectionCase(rule: R.endpointEmptyPath, provider: "chrome", input: S.subscription("https://fcm.googleapis.com/"), phrase: "no path"),
        RejectionCase(rule: R.endpointInvalidCharacters, provider: "chrome", input: S.subscription(S.chromeEndpoint + " x"), phrase: "a space"),
        RejectionCase(rule: R.endpointPlaceholder, provider: "chrome", input: S.subscription("https://permanently-removed.invalid/fcm/send/abc"), phrase: "placeholder"),
        RejectionCase(rule: R.endpointAPNsProviderURL, provider: "safari", input: S.subscription("https://api.push.apple.com/3/device/" + S.apnsHex), phrase: "APNs provider-API URL"),
        RejectionCase(rule: R.endpointHostNotAllowed, provider: "chrome", input: S.subscription(S.mozillaEndpoint), phrase: "not a push service of chrome", suggested: "firefox"),
        RejectionCase(rule: R.endpointHostNotAllowed, provider: "firefox", input: S.subscription(S.chromeEndpoint), phrase: "not a push service of firefox", suggested: "chrome"),
        RejectionCase(rule: R.endpointHostNotAllowed, provider: "edge", input: S.subscription("https://notify.windows.com/w/?token=abc"), phrase: "providers/ descriptor"),
        RejectionCase(rule: R.endpointHostNotAllowed, provider: "chrome", input: S.subscription("https://push.example.org/abc"), phrase: "providers/ descriptor"),
        RejectionCase(rule: R.endpointPathNotAllowed, provider: "chrome", input: S.subscription("https://fcm.googleapis.com/other/abc"), phrase: "/fcm/send/"),
        RejectionCase(rule: R.p256dhInvalidBase64, provider: "chrome", input: S.subscription(p256dh: S.p256dh + "!"), phrase: "not base64"),
        RejectionCase(rule: R.p256dhWrongLength, provider: "chrome", input: S.subscription(p256dh: String(S.p256dh.dropLast(3))), phrase: "a P-256 public key is 65 bytes"),
        RejectionCase(rule: R.p256dhNotUncompressed, provider: "chrome", input: S.subscription(p256dh: "B" + "a" + String(S.p256dh.dropFirst(2))), phrase: "0x04"),
        RejectionCase(rule: R.notOnCurve, provider: "chrome", input: S.subscription(p256dh: "BKUnxi5lV_Llt79f3Oj2GRsaJ7TPykZgERoakK4q5_ZflCkYASk7pxoqNFeKjOZHCiy2IDnA_5Taufsg9s-PCPg"), phrase: "not a point on the P-256 curve"),
        RejectionCase(rule: R.authInvalidBase64, provider: "chrome", input: S.subscription(auth: "DamkZBIffrMd*1HdsxvVOg"), phrase: "not base64"),
        RejectionCase(rule: R.authWrongLength, provider: "chrome", input: S.subscription(auth: "qfzazuoiWzwSVPcbtA3cR2bNaEmhGgowqpkcuot20Qc"), phrase: "exactly 16 bytes"),
        RejectionCase(rule: R.invalidExpirationTime, provider: "chrome", input: S.subscription(expirationTime: .integer(-1)), phrase: "non-negative integer"),
        RejectionCase(rule: R.invalidExpirationTime, provider: "chrome", input: S.subscription(expirationTime: .double(1.5)), phrase: "non-negative integer"),
        RejectionCase(rule: R.invalidExpirationTime, provider: "firefox", input: .text(S.subscriptionText(S.mozillaEndpoint).replacingOccurrences(of: "null", with: "\"soon\"")), phrase: "non-negative integer"),
        RejectionCase(rule: R.invalidWebsitePushID, provider: "safari", input: .json(.object(["deviceToken": .string(S.apnsHex), "websitePushId": .string("com.example.news")])), phrase: "starting with 'web.'"),
    ]

    @Test("each rule rejects with its id, a reason naming it, and the better provider", arguments: cases)
    func rejection(_ expected: RejectionCase) {
        switch outcome(provider: expected.provider, expected.input, environment: expected.environment) {
        case .success(let token):
            Issue.record("accepted, expected \(expected.rule): \(token.pushToken.prefix(80))")
        case .failure(let rejection):
            #expect(rejection.rule == expected.rule, "\(rejection.reason)")
            #expect(rejection.reason.hasPrefix(expected.rule + ": "), "the reason names the rule: \(rejection.reason)")
            #expect(rejection.reason.contains(expected.phrase), "\(rejection.reason)")
            for phrase in expected.alsoContains {
                #expect(rejection.reason.contains(phrase), "missing '\(phrase)': \(rejection.reason)")
            }
            #expect(rejection.suggestedProvider == expected.suggested, "\(rejection.reason)")
            if let suggested = expected.suggested {
                #expect(rejection.reason.contains("use provider \(suggested)"), "\(rejection.reason)")
            }
        }
    }

    @Test("every rule id has a case above, and ids are unique kebab-case")
    func everyRuleIsCovered() {
        let covered = Set(Self.cases.map(\.rule))
        for rule in R.all {
            #expect(covered.contains(rule), "no rejection case for rule \(rule)")
            #expect(rule.allSatisfy { $0.isLowercase || $0.isNumber || $0 == "-" }, "\(rule)")
        }
        #expect(Set(R.all).count == R.all.count)
        #expect(covered.isSubset(of: Set(R.all)))
    }

    @Test("the APNs environment is kept in lower case and ignored by other providers")
    func environment() throws {
        let registry = ProviderRegistry.builtIn
        #expect(try registry.normalize(provider: "apns", input: .text(S.apnsHex), environment: "Sandbox").environment == "sandbox")
        #expect(try registry.normalize(provider: "apns", input: .text(S.apnsHex), environment: "production").environment == "production")
        #expect(try registry.normalize(provider: "apns", input: .text(S.apnsHex)).environment == nil)
        #expect(try registry.normalize(provider: "fcm", input: .text(S.fcm), environment: "bogus").environment == nil)
    }

    @Test("legacy Safari keeps the website push ID beside the token")
    func websitePushID() throws {
        let input = TokenInput.json(.object(["deviceToken": .string(S.apnsHex.uppercased()), "websitePushId": .string("web.com.example")]))
        let token = try ProviderRegistry.builtIn.normalize(provider: "safari", input: input)
        #expect(token.websitePushID == "web.com.example")
        #expect(token.pushToken == S.apnsHex && token.namespace == "apns" && token.platform == "safari")
    }

    @Test("Safari 16+ subscriptions are Web Push tokens")
    func safariWebPush() throws {
        let endpoint = "https://web.push.apple.com/QGuQyavXutnMH8Lr5Aq9ZBS2KOn5UXQL9N0NR7JKoQ"
        let token = try ProviderRegistry.builtIn.normalize(provider: "safari", input: .text(S.subscriptionText(endpoint)))
        #expect(token.namespace == "webpush" && token.platform == "safari")
        #expect(token.tokenHash == pushTokenHash(namespace: "webpush", key: endpoint))
        #expect(token.subscription?.endpoint == endpoint)
    }
}
