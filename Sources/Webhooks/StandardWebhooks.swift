import Crypto
import Foundation

/// Signing as the Standard Webhooks specification 1.0 says (standardwebhooks.com), so that a receiver verifies with
/// the spec's published libraries in any language:
/// `webhook-signature: v1,<base64 of HMAC-SHA256(key, "<webhook-id>.<webhook-timestamp>.<body>")>`.
public enum StandardWebhooks {
    /// The three headers of one delivery attempt: the message's id (the same on every retry), the attempt's Unix time
    /// in seconds, and the signature over both and the body.
    public static func headers(id: String, timestamp: Int64, body: [UInt8], secret: WebhookSecret) -> [(String, String)] {
        [
            ("webhook-id", id),
            ("webhook-timestamp", String(timestamp)),
            ("webhook-signature", signature(id: id, timestamp: timestamp, body: body, key: secret.key)),
        ]
    }

    /// `v1,` and the base64 HMAC-SHA256 of `id.timestamp.body` under `key`.
    public static func signature(id: String, timestamp: Int64, body: [UInt8], key: [UInt8]) -> String {
        var content = Array("\(id).\(timestamp).".utf8)
        content += body
        let mac = HMAC<SHA256>.authenticationCode(for: content, using: SymmetricKey(data: key))
        return "v1," + Data(mac).base64EncodedString()
    }
}

/// A webhook endpoint's signing secret: `whsec_` and the base64 of at least 24 random bytes, as the spec's libraries
/// write and read it. The key is a secret: never logged, never shown.
public struct WebhookSecret: Sendable, Hashable, CustomStringConvertible {
    public let key: [UInt8]

    public static let prefix = "whsec_"
    public static let minimumKeyBytes = 24

    /// Reads `whsec_<base64>`; nil with the reason when it is not one.
    public static func parse(_ text: String) -> Result<WebhookSecret, SecretError> {
        guard text.hasPrefix(prefix) else { return .failure(.missingPrefix) }
        guard let bytes = Data(base64Encoded: String(text.dropFirst(prefix.count))) else { return .failure(.notBase64) }
        guard bytes.count >= minimumKeyBytes else { return .failure(.tooShort(bytes.count)) }
        return .success(WebhookSecret(key: Array(bytes)))
    }

    public init(key: [UInt8]) { self.key = key }

    /// Never the key.
    public var description: String { "whsec_(\(key.count) bytes)" }

    public enum SecretError: Error, Equatable, CustomStringConvertible {
        case missingPrefix, notBase64
        case tooShort(Int)
        public var description: String {
            switch self {
            case .missingPrefix: "must start with whsec_ (the Standard Webhooks form)"
            case .notBase64: "must be whsec_ followed by base64"
            case .tooShort(let n): "must hold at least \(WebhookSecret.minimumKeyBytes) bytes after whsec_, has \(n)"
            }
        }
    }
}
