/// One push provider as data: which plugin reads its tokens and with which limits.
///
/// Descriptors live in `providers/*.json` (compiled in as `BuiltInProviders`) so that operators can
/// add hosts (self-hosted push services) or whole providers without a code change. Fields that a
/// kind does not use are absent. An override replaces the whole descriptor with the same id.
public struct ProviderDescriptor: Sendable, Hashable, Codable {
    /// Which plugin reads the tokens.
    public enum Kind: String, Sendable, Hashable, Codable, CaseIterable {
        /// Opaque device-token bytes (APNs apps): hex, NSData description or base64 in; lowercase hex out.
        case apns
        /// Opaque strings kept verbatim (FCM, HMS).
        case opaque
        /// W3C Push API subscriptions (Chrome, Firefox, Edge).
        case webpush
        /// Safari: a Web Push subscription (Safari 16+) or a legacy website-push device token.
        case safari
    }

    /// Provider id as used in requests ("chrome").
    public var id: String
    /// Mobile Engage platform sent with the token.
    public var platform: String
    /// Token-hash namespace (the delivery channel).
    public var namespace: String
    public var kind: Kind
    /// Allowed endpoint hosts (webpush, safari): exact lowercase names or "*.suffix" wildcards
    /// (one or more labels in front of the suffix).
    public var endpointHosts: [String]?
    /// When present, the endpoint path must start with one of these (webpush, safari).
    public var endpointPathPrefixes: [String]?
    /// Device-token length bounds in bytes (apns, and safari's legacy device token).
    public var minBytes: Int?
    public var maxBytes: Int?
    /// Upper bound in characters for opaque tokens; absent means no bound (HMS).
    public var maxLength: Int?
    /// Opaque kind: reject a string that is all hex digits and APNs-sized (an APNs token sent here).
    public var rejectsHexDeviceTokens: Bool?
    /// Opaque and apns kinds: reject the ids of push wrappers that clients send in place of the
    /// device's native token: Expo push tokens (`ExponentPushToken[...]`, `ExpoPushToken[...]`) and
    /// UUIDs (OneSignal player/subscription ids, Airship channel ids). See `WrapperIDs`.
    public var rejectsWrapperIDs: Bool?
    /// Safari: the namespace of legacy device tokens (they travel over APNs).
    public var deviceTokenNamespace: String?
    /// Free text for people reading the file.
    public var notes: String?

    public init(
        id: String, platform: String, namespace: String, kind: Kind,
        endpointHosts: [String]? = nil, endpointPathPrefixes: [String]? = nil,
        minBytes: Int? = nil, maxBytes: Int? = nil, maxLength: Int? = nil,
        rejectsHexDeviceTokens: Bool? = nil, rejectsWrapperIDs: Bool? = nil, deviceTokenNamespace: String? = nil,
        notes: String? = nil
    ) {
        self.id = id
        self.platform = platform
        self.namespace = namespace
        self.kind = kind
        self.endpointHosts = endpointHosts
        self.endpointPathPrefixes = endpointPathPrefixes
        self.minBytes = minBytes
        self.maxBytes = maxBytes
        self.maxLength = maxLength
        self.rejectsHexDeviceTokens = rejectsHexDeviceTokens
        self.rejectsWrapperIDs = rejectsWrapperIDs
        self.deviceTokenNamespace = deviceTokenNamespace
        self.notes = notes
    }

    /// Device-token byte bounds with the documented defaults (32...200) when a descriptor built in
    /// code leaves them out.
    var deviceTokenBytes: ClosedRange<Int> {
        let lower = minBytes ?? 32
        return lower...max(lower, maxBytes ?? 200)
    }

    /// True when `host` (lowercase) is one of `endpointHosts`.
    func allowsHost(_ host: String) -> Bool {
        (endpointHosts ?? []).contains { HostPattern.matches($0, host: host) }
    }
}

/// Host patterns of `endpointHosts`.
enum HostPattern {
    static func matches(_ pattern: String, host: String) -> Bool {
        let pattern = pattern.lowercased()
        if pattern.hasPrefix("*.") {
            let suffix = pattern.dropFirst(1)  // ".notify.windows.com"
            return host.count > suffix.count && host.hasSuffix(suffix)
        }
        return host == pattern
    }

    /// A valid pattern: a lowercase DNS name, optionally behind "*.".
    static func isValid(_ pattern: String) -> Bool {
        let name = pattern.hasPrefix("*.") ? String(pattern.dropFirst(2)) : pattern
        return DNSName.isValid(name) && name == name.lowercased()
    }
}

/// Syntax of host names as endpoints may carry them: LDH labels separated by single dots.
enum DNSName {
    static func isValid(_ name: String) -> Bool {
        let labels = name.utf8.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard !name.isEmpty, name.utf8.count <= 253 else { return false }
        return labels.allSatisfy { label in
            !label.isEmpty && label.count <= 63 && label.allSatisfy { byte in
                byte == UInt8(ascii: "-") || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
                    || (byte | 0x20 >= UInt8(ascii: "a") && byte | 0x20 <= UInt8(ascii: "z"))
            }
        }
    }
}
