import Crypto

/// W3C Push API subscriptions (Chrome, Firefox, Edge, and Safari 16+ through `SafariPlugin`).
///
/// The endpoint is the token's identity (and its hash key); keys and `expirationTime` are
/// attributes that may change on re-registration and are carried in the canonical `pushToken`.
/// The endpoint host decides which browser's push service this is, and it must be one of the
/// requested provider's hosts (data in `providers/`); a host of another provider is refused with
/// that provider named, rather than silently relabelled.
struct WebPushPlugin: TokenPlugin {
    func normalize(_ request: TokenRequest) throws(TokenRejection) -> NormalizedToken {
        switch try SubscriptionInput.read(request.input) {
        case .object(let members):
            return try Self.subscription(members, request: request)
        case .token(let text):
            throw Self.notASubscription(text, request: request)
        }
    }

    static func notASubscription(_ text: String, request: TokenRequest) -> TokenRejection {
        if text.containsBytes("://") {
            return TokenRejection(
                TokenRejection.Rule.bareEndpoint,
                "this is only an endpoint URL; send the whole PushSubscription (endpoint and keys), e.g. JSON.stringify(subscription).")
        }
        let hint = request.hints.hint(forText: text)
        return TokenRejection(
            TokenRejection.Rule.notASubscription,
            "\(request.descriptor.id) needs the browser's PushSubscription JSON ({\"endpoint\", \"keys\"}), not a plain string.",
            hint: hint)
    }

    /// Validates and canonicalises one subscription object for `request.descriptor`.
    static func subscription(_ members: [String: JSONValue], request: TokenRequest) throws(TokenRejection) -> NormalizedToken {
        let descriptor = request.descriptor
        guard case .string(let endpointText)? = members["endpoint"] else {
            throw TokenRejection(
                TokenRejection.Rule.missingEndpoint,
                "the subscription has no \"endpoint\" string; send the browser's PushSubscription unchanged.")
        }
        let endpoint = try EndpointURL.parse(endpointText)
        try checkHost(endpoint, request: request)
        guard case .object(let keys)? = members["keys"],
              case .string(let p256dhText)? = keys["p256dh"], case .string(let authText)? = keys["auth"] else {
            throw TokenRejection(
                TokenRejection.Rule.missingKeys,
                "the subscription lacks \"keys\" with \"p256dh\" and \"auth\" strings; without them no message can be encrypted.")
        }
        let p256dh = try WebPushKeys.p256dh(p256dhText)
        let auth = try WebPushKeys.auth(authText)
        let expirationTime = try Self.expirationTime(members["expirationTime"])
        let subscription = WebPushSubscription(
            endpoint: endpoint.canonical, expirationTime: expirationTime, p256dh: p256dh, auth: auth)
        return NormalizedToken(
            provider: descriptor.id, platform: descriptor.platform, namespace: descriptor.namespace,
            pushToken: canonicalJSON(subscription),
            tokenHash: pushTokenHash(namespace: descriptor.namespace, key: endpoint.canonical),
            subscription: subscription)
    }

    /// `{"endpoint":..,"expirationTime":..,"keys":{"p256dh":..,"auth":..}}`: members in this order, no
    /// white space, as `JSON.stringify(subscription)` writes it.
    static func canonicalJSON(_ subscription: WebPushSubscription) -> String {
        let expiration = subscription.expirationTime.map(String.init) ?? "null"
        return #"{"endpoint":"# + CanonicalJSON.quoted(subscription.endpoint) + #","expirationTime":"# + expiration
            + #","keys":{"p256dh":"# + CanonicalJSON.quoted(subscription.p256dh)
            + #","auth":"# + CanonicalJSON.quoted(subscription.auth) + "}}"
    }

    private static func checkHost(_ endpoint: EndpointURL, request: TokenRequest) throws(TokenRejection) {
        let descriptor = request.descriptor
        let host = endpoint.host
        if host == "invalid" || host.hasSuffix(".invalid") {
            throw TokenRejection(
                TokenRejection.Rule.endpointPlaceholder,
                "the endpoint host '\(host)' is a placeholder some browsers report for a removed subscription; it can never receive messages, so subscribe again.")
        }
        if APNsHosts.isProviderAPIHost(host) || endpoint.path.hasPrefix("/3/device/") {
            throw TokenRejection(
                TokenRejection.Rule.endpointAPNsProviderURL,
                "the endpoint is an APNs provider-API URL, not a Web Push endpoint; send the endpoint the browser returned in its PushSubscription.")
        }
        guard descriptor.allowsHost(host) else {
            if let owner = request.hints.webProvider(owningHost: host), owner != descriptor.id {
                throw TokenRejection(
                    TokenRejection.Rule.endpointHostNotAllowed,
                    "the endpoint host '\(host)' is not a push service of \(descriptor.id) (provider and host must match).",
                    hint: ProviderHint(provider: owner, what: "a Web Push endpoint of \(owner)"))
            }
            throw TokenRejection(
                TokenRejection.Rule.endpointHostNotAllowed,
                "the endpoint host '\(host.prefix(255))' is not one of \(descriptor.id)'s push services (\((descriptor.endpointHosts ?? []).joined(separator: ", "))); an operator can add a self-hosted push service in a providers/ descriptor.")
        }
        if let prefixes = descriptor.endpointPathPrefixes, !prefixes.contains(where: endpoint.path.hasPrefix) {
            throw TokenRejection(
                TokenRejection.Rule.endpointPathNotAllowed,
                "the endpoint path does not start with any of \(prefixes.joined(separator: ", ")), the paths \(descriptor.id)'s push service issues.")
        }
    }

    /// Absent or null: none. Otherwise a non-negative integer (epoch milliseconds).
    private static func expirationTime(_ value: JSONValue?) throws(TokenRejection) -> Int64? {
        switch value {
        case nil, .null?: return nil
        case .integer(let milliseconds)? where milliseconds >= 0: return milliseconds
        default:
            throw TokenRejection(
                TokenRejection.Rule.invalidExpirationTime,
                "\"expirationTime\" must be null or a non-negative integer (epoch milliseconds).")
        }
    }
}

/// The subscription's encryption keys (RFC 8291): checked, then written as unpadded base64url.
enum WebPushKeys {
    static func p256dh(_ text: String) throws(TokenRejection) -> String {
        guard text.utf8.count <= 100 else {
            throw TokenRejection(
                TokenRejection.Rule.p256dhWrongLength,
                "keys.p256dh is \(text.utf8.count) characters, far more than the 87 of a 65-byte P-256 public key.")
        }
        guard let bytes = Base64Coding.decode(text.utf8) else {
            throw TokenRejection(
                TokenRejection.Rule.p256dhInvalidBase64,
                "keys.p256dh is not base64 or base64url; send the key as the browser encoded it.")
        }
        guard bytes.count == 65 else {
            throw TokenRejection(
                TokenRejection.Rule.p256dhWrongLength,
                "keys.p256dh decodes to \(bytes.count) bytes; a P-256 public key is 65 bytes.")
        }
        guard bytes[0] == 0x04 else {
            throw TokenRejection(
                TokenRejection.Rule.p256dhNotUncompressed,
                "keys.p256dh starts with byte 0x\(HexCoding.encode([bytes[0]])); an uncompressed P-256 point starts with 0x04.")
        }
        do {
            _ = try P256.KeyAgreement.PublicKey(x963Representation: bytes)
        } catch {
            throw TokenRejection(
                TokenRejection.Rule.notOnCurve,
                "keys.p256dh is 65 bytes but not a point on the P-256 curve, so it is not a real key.")
        }
        return Base64Coding.encodeURLUnpadded(bytes)
    }

    static func auth(_ text: String) throws(TokenRejection) -> String {
        guard text.utf8.count <= 64, let bytes = Base64Coding.decode(text.utf8) else {
            throw TokenRejection(
                TokenRejection.Rule.authInvalidBase64,
                "keys.auth is not base64 or base64url of a 16-byte secret.")
        }
        guard bytes.count == 16 else {
            throw TokenRejection(
                TokenRejection.Rule.authWrongLength,
                "keys.auth decodes to \(bytes.count) bytes; the authentication secret is exactly 16 bytes.")
        }
        return Base64Coding.encodeURLUnpadded(bytes)
    }
}
