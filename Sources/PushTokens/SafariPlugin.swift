/// Safari: Safari 16+ sends a standard Web Push subscription; Safari on macOS 12 and older used
/// website push with an APNs device token, as a hex string or `{deviceToken, websitePushId}`.
///
/// The two are told apart by shape (an object with `endpoint`, or anything else); a legacy token
/// is hashed in the descriptor's `deviceTokenNamespace` (apns), because it travels over APNs.
struct SafariPlugin: TokenPlugin {
    func normalize(_ request: TokenRequest) throws(TokenRejection) -> NormalizedToken {
        switch try SubscriptionInput.read(request.input) {
        case .object(let members) where members["endpoint"] != nil || members["deviceToken"] == nil:
            return try WebPushPlugin.subscription(members, request: request)
        case .object(let members):
            guard case .string(let token)? = members["deviceToken"] else {
                throw TokenRejection(TokenRejection.Rule.wrongInputType, "\"deviceToken\" must be a string of hex digits.")
            }
            return try legacy(token, websitePushID: try websitePushID(members["websitePushId"]), request: request)
        case .token(let text):
            if text.containsBytes("://") { throw WebPushPlugin.notASubscription(text, request: request) }
            return try legacy(text, websitePushID: nil, request: request)
        }
    }

    private func legacy(_ text: String, websitePushID: String?, request: TokenRequest) throws(TokenRejection) -> NormalizedToken {
        let descriptor = request.descriptor
        let token = try InputText.token(from: text)
        let bytes = try DeviceTokenReader.bytes(token, bounds: descriptor.deviceTokenBytes, hints: request.hints)
        let hex = HexCoding.encode(bytes)
        let namespace = descriptor.deviceTokenNamespace ?? "apns"
        return NormalizedToken(
            provider: descriptor.id, platform: descriptor.platform, namespace: namespace,
            pushToken: hex, tokenHash: pushTokenHash(namespace: namespace, key: hex),
            websitePushID: websitePushID)
    }

    /// Absent or null, or a reverse-DNS id that starts with "web." (Apple's rule for website push IDs).
    private func websitePushID(_ value: JSONValue?) throws(TokenRejection) -> String? {
        switch value {
        case nil, .null?: return nil
        case .string(let id)? where id.hasPrefix("web.") && id.utf8.count > 4 && id.utf8.count <= 255
            && id.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }):
            return id
        default:
            throw TokenRejection(
                TokenRejection.Rule.invalidWebsitePushID,
                "the website push ID must be a string starting with 'web.' (e.g. 'web.com.example.news'), as registered with Apple.")
        }
    }
}
