import Crypto
import Foundation

/// Valid tokens of every provider, made fresh per test (web push keys are real P-256 points).
enum Tokens {
    static func base64url(_ bytes: some Sequence<UInt8>) -> String {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func random(_ n: Int) -> [UInt8] { (0..<n).map { _ in UInt8.random(in: 0...255) } }

    static func fcm() -> String { "d\(base64url(random(8))):APA91b\(base64url(random(100)))" }
    static func hms() -> String { "IQAAAACy\(base64url(random(60)))" }
    static func apnsHex() -> String { random(32).map { String(format: "%02X", $0) }.joined() }

    static func subscription(host: String, path: String) -> [String: Any] {
        let key = P256.KeyAgreement.PrivateKey().publicKey.x963Representation
        return [
            "endpoint": "https://\(host)\(path)\(base64url(random(24)))",
            "expirationTime": NSNull(),
            "keys": ["p256dh": base64url(key), "auth": base64url(random(16))],
        ]
    }

    /// (provider, token, ME platform) for each provider.
    static func all() -> [(provider: String, token: Any, platform: String)] {
        [
            ("fcm", fcm(), "android"),
            ("apns", apnsHex(), "ios"),
            ("hms", hms(), "android-huawei"),
            ("chrome", subscription(host: "fcm.googleapis.com", path: "/fcm/send/"), "chrome"),
            ("firefox", subscription(host: "updates.push.services.mozilla.com", path: "/wpush/v2/"), "firefox"),
            ("safari", subscription(host: "web.push.apple.com", path: "/"), "safari"),
            ("edge", subscription(host: "wns2-by3p.notify.windows.com", path: "/w/?token="), "edge"),
        ]
    }
}
