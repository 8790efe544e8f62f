/// A Web Push subscription in canonical form: endpoint with lowercase scheme and host and no `:443`,
/// keys as unpadded base64url.
public struct WebPushSubscription: Sendable, Hashable, Codable {
    public var endpoint: String
    public var expirationTime: Int64?
    public var p256dh: String
    public var auth: String

    public init(endpoint: String, expirationTime: Int64?, p256dh: String, auth: String) {
        self.endpoint = endpoint
        self.expirationTime = expirationTime
        self.p256dh = p256dh
        self.auth = auth
    }
}

/// A push token that passed its provider's rules, in the form Mobile Engage is sent.
public struct NormalizedToken: Sendable, Hashable, Codable {
    /// Provider id as requested, e.g. "chrome".
    public var provider: String
    /// Mobile Engage platform: android, android-huawei, ios, chrome, firefox, safari, edge.
    public var platform: String
    /// Token-hash namespace (the delivery channel): apns, fcm, hms, webpush.
    public var namespace: String
    /// The exact string for `PUT /client/push-token`.
    public var pushToken: String
    /// 64 lowercase hex digits: `pushTokenHash(namespace:scope:"",key:)` of the canonical key.
    public var tokenHash: String
    /// The canonical subscription, for Web Push tokens only.
    public var subscription: WebPushSubscription?
    /// APNs environment ("production" or "sandbox") when the caller gave one; nil otherwise.
    public var environment: String?
    /// Legacy Safari website push ID (the APNs topic, starts with "web.") when the input carried one.
    public var websitePushID: String?

    public init(
        provider: String, platform: String, namespace: String, pushToken: String, tokenHash: String,
        subscription: WebPushSubscription? = nil, environment: String? = nil, websitePushID: String? = nil
    ) {
        self.provider = provider
        self.platform = platform
        self.namespace = namespace
        self.pushToken = pushToken
        self.tokenHash = tokenHash
        self.subscription = subscription
        self.environment = environment
        self.websitePushID = websitePushID
    }
}
