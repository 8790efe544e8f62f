import Crypto
import Foundation

/// Mints JWT-shaped strings (`base64url(header).base64url(payload).base64url(signature)`, HS256).
///
/// The real backend's client state and contact tokens are JWTs; issuing the same shape lets the bridge's
/// header handling, logging and size limits meet realistic values. The key is random per process because
/// nothing outside the sandbox ever verifies a signature: the sandbox validates tokens by looking them up.
struct TokenSigner: Sendable {
    private let key = SymmetricKey(size: .bits256)

    private static let header = base64URL(Array(#"{"alg":"HS256","typ":"JWT"}"#.utf8))

    /// Encodes `payload` with sorted keys (stable output) and signs header and payload.
    func sign(_ payload: some Encodable) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // The payload types are plain structs of strings and numbers; encoding them cannot fail.
        let payloadBytes = (try? encoder.encode(payload)) ?? Data("{}".utf8)
        let signingInput = Self.header + "." + Self.base64URL(Array(payloadBytes))
        let mac = HMAC<SHA256>.authenticationCode(for: Data(signingInput.utf8), using: key)
        return signingInput + "." + Self.base64URL(Array(mac))
    }

    /// A random opaque token (used for refresh tokens, which the SDKs never look inside).
    static func randomOpaqueToken(byteCount: Int = 32) -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<byteCount).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        return base64URL(bytes)
    }

    static func base64URL(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}
