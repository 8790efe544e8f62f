/// Every rejection the plugins can give, in one table, so rule ids stay stable and each message
/// is written once. A message starts with the rule id and says what to do about it.
extension TokenRejection {
    /// The stable rule ids.
    public enum Rule {
        public static let unknownProvider = "unknown-provider"
        public static let inputTooLarge = "input-too-large"
        public static let empty = "empty"
        public static let placeholderLiteral = "placeholder-literal"
        public static let wrongInputType = "wrong-input-type"
        public static let invalidEnvironment = "invalid-environment"
        // Device tokens (APNs, legacy Safari)
        public static let elidedDescription = "elided-description"
        public static let hexPrefix = "hex-prefix"
        public static let hexOddLength = "hex-odd-length"
        public static let invalidBase64 = "invalid-base64"
        public static let invalidCharacters = "invalid-characters"
        public static let tooShort = "too-short"
        public static let tooLong = "too-long"
        public static let looksLikeURL = "looks-like-url"
        public static let looksLikeFCMToken = "looks-like-fcm-token"
        public static let looksLikeAPNsToken = "looks-like-apns-token"
        // Ids of push wrappers sent instead of a native token (FCM, HMS, APNs; descriptor `rejectsWrapperIDs`)
        public static let looksLikeExpoPushToken = "looks-like-expo-push-token"
        public static let looksLikeUUID = "looks-like-uuid"
        // Opaque tokens (FCM, HMS)
        public static let innerWhitespace = "inner-whitespace"
        public static let controlCharacter = "control-character"
        public static let nonASCII = "non-ascii"
        // Web Push
        public static let malformedJSON = "malformed-json"
        public static let tooDeeplyEncoded = "too-deeply-encoded"
        public static let bareEndpoint = "bare-endpoint"
        public static let notASubscription = "not-a-subscription"
        public static let missingEndpoint = "missing-endpoint"
        public static let missingKeys = "missing-keys"
        public static let endpointTooLong = "endpoint-too-long"
        public static let endpointMalformed = "endpoint-malformed"
        public static let endpointNotHTTPS = "endpoint-not-https"
        public static let endpointUserinfo = "endpoint-userinfo"
        public static let endpointFragment = "endpoint-fragment"
        public static let endpointPortNotAllowed = "endpoint-port-not-allowed"
        public static let endpointIPLiteral = "endpoint-ip-literal"
        public static let endpointEmptyPath = "endpoint-empty-path"
        public static let endpointInvalidCharacters = "endpoint-invalid-characters"
        public static let endpointPlaceholder = "endpoint-placeholder"
        public static let endpointAPNsProviderURL = "endpoint-apns-provider-url"
        public static let endpointHostNotAllowed = "endpoint-host-not-allowed"
        public static let endpointPathNotAllowed = "endpoint-path-not-allowed"
        public static let p256dhInvalidBase64 = "p256dh-invalid-base64"
        public static let p256dhWrongLength = "p256dh-wrong-length"
        public static let p256dhNotUncompressed = "p256dh-not-uncompressed"
        public static let notOnCurve = "not-on-curve"
        public static let authInvalidBase64 = "auth-invalid-base64"
        public static let authWrongLength = "auth-wrong-length"
        public static let invalidExpirationTime = "invalid-expiration-time"
        // Legacy Safari
        public static let invalidWebsitePushID = "invalid-website-push-id"

        /// Every rule id, for documentation and tests.
        public static let all: [String] = [
            unknownProvider,
            inputTooLarge,
            empty,
            placeholderLiteral,
            wrongInputType,
            invalidEnvironment,
            elidedDescription,
            hexPrefix,
            hexOddLength,
            invalidBase64,
            invalidCharacters,
            tooShort,
            tooLong,
            looksLikeURL,
            looksLikeFCMToken,
            looksLikeAPNsToken,
            looksLikeExpoPushToken,
            looksLikeUUID,
            innerWhitespace,
            controlCharacter,
            nonASCII,
            malformedJSON,
            tooDeeplyEncoded,
            bareEndpoint,
            notASubscription,
            missingEndpoint,
            missingKeys,
            endpointTooLong,
            endpointMalformed,
            endpointNotHTTPS,
            endpointUserinfo,
            endpointFragment,
            endpointPortNotAllowed,
            endpointIPLiteral,
            endpointEmptyPath,
            endpointInvalidCharacters,
            endpointPlaceholder,
            endpointAPNsProviderURL,
            endpointHostNotAllowed,
            endpointPathNotAllowed,
            p256dhInvalidBase64,
            p256dhWrongLength,
            p256dhNotUncompressed,
            notOnCurve,
            authInvalidBase64,
            authWrongLength,
            invalidExpirationTime,
            invalidWebsitePushID,
        ]
    }

    /// A rejection whose reason is "<rule>: <sentence>", plus the provider hint when there is one.
    init(_ rule: String, _ sentence: String, hint: ProviderHint? = nil) {
        var reason = "\(rule): \(sentence)"
        if let hint {
            reason += " This looks like \(hint.what); use provider \(hint.provider)."
        }
        self.init(rule: rule, reason: reason, suggestedProvider: hint?.provider)
    }
}

/// A better-fitting provider for an input, found by `ProviderHints`.
struct ProviderHint: Sendable, Hashable {
    var provider: String
    /// A noun phrase: "an FCM registration token", "a Web Push endpoint of firefox".
    var what: String
}
