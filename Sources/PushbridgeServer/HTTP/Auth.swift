import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import PushbridgeConfig

/// Per-app bearer keys. Keys are compared as SHA-256 digests in constant time, across every
/// configured key, so neither a key's content nor which app owns it leaks through timing.
struct Authenticator: Sendable {
    private let keys: [(app: String, digest: [UInt8])]
    private let appsWithKeys: Set<String>

    init(apps: [BridgeConfiguration.App]) {
        keys = apps.flatMap { app in app.apiKeys.map { (app.code, Array(SHA256.hash(data: Data($0.utf8)))) } }
        appsWithKeys = Set(apps.filter { !$0.apiKeys.isEmpty }.map(\.code))
    }

    /// Checks `request` for the app `appCode` (nil: a route that any app's key may call).
    func authorize(_ request: Request, appCode: String?) throws {
        if let appCode {
            guard appsWithKeys.contains(appCode) else { return }  // a key sent to an app without keys is ignored
        } else if appsWithKeys.isEmpty {
            return
        }
        guard let owner = owner(of: request) else {
            var p = Problem(.unauthorized, "unauthorized", "Unauthorized", detail: "Send a valid API key as 'Authorization: Bearer <key>'.")
            p.headers[.wwwAuthenticate] = "Bearer"
            throw p
        }
        if let appCode, owner != appCode {
            throw Problem(.forbidden, "forbidden", "Forbidden", detail: "This API key belongs to another app.")
        }
    }

    private func owner(of request: Request) -> String? {
        guard let header = request.headers[.authorization] else { return nil }
        let parts = header.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        let candidate = Array(SHA256.hash(data: Data(parts[1].trimmingCharacters(in: .whitespaces).utf8)))
        var found: String?
        for key in keys {
            var diff: UInt8 = 0
            for i in 0..<candidate.count { diff |= candidate[i] ^ key.digest[i] }
            if diff == 0 && found == nil { found = key.app }
        }
        return found
    }
}
