import Crypto

/// The dedup key of a push token (push-tokens.md, "Token hash"):
/// lowercase hex of SHA-256("pushtoken/v1" 0x00 namespace 0x00 scope 0x00 key).
///
/// The namespace is the delivery channel, not the provider id, so one Web Push subscription
/// relabelled from chrome to firefox is still one token.
public func pushTokenHash(namespace: String, scope: String = "", key: String) -> String {
    var hasher = SHA256()
    hasher.update(data: Array("pushtoken/v1".utf8))
    for part in [namespace, scope, key] {
        hasher.update(data: [0])
        hasher.update(data: Array(part.utf8))
    }
    return HexCoding.encode(hasher.finalize())
}
