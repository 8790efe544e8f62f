/// Guesses which provider an input belongs to, so a rejection can say "use provider fcm".
///
/// Only used after a token has been refused; a guess never makes a token valid. The answer comes
/// from the registry's data (hosts, kinds, namespaces), so an operator's extra provider is named too.
struct ProviderHints: Sendable {
    private let descriptors: [ProviderDescriptor]  // sorted by id, so the first match is stable

    init(descriptors: [ProviderDescriptor]) { self.descriptors = descriptors }

    /// The Web Push provider (webpush or safari kind) whose endpoint hosts include `host`.
    func webProvider(owningHost host: String) -> String? {
        descriptors.first { ($0.kind == .webpush || $0.kind == .safari) && $0.allowsHost(host) }?.id
    }

    private func provider(kind: ProviderDescriptor.Kind, namespace: String? = nil) -> String? {
        descriptors.first { $0.kind == kind && (namespace == nil || $0.namespace == namespace) }?.id
    }

    /// A guess for any input; nil when nothing fits better.
    func hint(for input: TokenInput) -> ProviderHint? {
        switch input {
        case .text(let text): hint(forText: text)
        case .json(.string(let text)): hint(forText: text)
        case .json(.object(let members)): hint(forObject: members)
        case .json: nil
        }
    }

    func hint(forObject members: [String: JSONValue]) -> ProviderHint? {
        if case .string(let endpoint)? = members["endpoint"] { return hint(forURL: endpoint) }
        if members["deviceToken"] != nil, let safari = provider(kind: .safari) {
            return ProviderHint(provider: safari, what: "a legacy Safari device token")
        }
        return nil
    }

    func hint(forURL text: String) -> ProviderHint? {
        guard let host = EndpointURL.roughHost(of: text), let owner = webProvider(owningHost: host) else { return nil }
        return ProviderHint(provider: owner, what: "a Web Push endpoint of \(owner) (send the whole subscription)")
    }

    /// Guesses from a token string: a URL, an APNs-sized hex string, an FCM registration token, or a
    /// subscription serialised as JSON text.
    func hint(forText raw: String) -> ProviderHint? {
        guard raw.utf8.count <= InputText.maxInputBytes else { return nil }
        let text = InputText.trimmed(raw)
        let bytes = Array(text.utf8)
        guard let first = bytes.first else { return nil }
        if first == UInt8(ascii: "{") || first == UInt8(ascii: "\"") {
            switch JSONParser.parse(bytes) {
            case .object(let members)?: return hint(forObject: members)
            case .string(let inner)? where inner.utf8.first != UInt8(ascii: "\""): return hint(forText: inner)
            default: return nil
            }
        }
        if text.containsBytes("://") { return hint(forURL: String(text)) }
        if Self.isAPNsSizedHex(bytes), let apns = provider(kind: .apns) {
            return ProviderHint(provider: apns, what: "an APNs device token")
        }
        if Self.looksLikeFCMToken(bytes), let fcm = provider(kind: .opaque, namespace: "fcm") {
            return ProviderHint(provider: fcm, what: "an FCM registration token")
        }
        return nil
    }

    /// Only hex digits (spaces and NSData brackets allowed), 64 to 400 digits: 32 to 200 bytes.
    static func isAPNsSizedHex(_ bytes: [UInt8]) -> Bool {
        var digits = 0
        for byte in bytes {
            if HexCoding.isHexDigit(byte) {
                digits += 1
            } else if byte != UInt8(ascii: " ") && byte != UInt8(ascii: "<") && byte != UInt8(ascii: ">") {
                return false
            }
        }
        return digits % 2 == 0 && (64...400).contains(digits)
    }

    /// The observed FCM shape `<instance id>:<token>`: letters, digits, `_`, `-` and at least one `:`.
    /// No contract (Google says so); only used to word a rejection.
    static func looksLikeFCMToken(_ bytes: [UInt8]) -> Bool {
        guard bytes.count >= 20, bytes.contains(UInt8(ascii: ":")) else { return false }
        return bytes.allSatisfy { byte in
            byte == UInt8(ascii: ":") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-")
                || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
                || (byte | 0x20 >= UInt8(ascii: "a") && byte | 0x20 <= UInt8(ascii: "z"))
        }
    }
}
