import Foundation
import Webhooks

extension ConfigLoader {
    /// `apps[i].webhooks`: a list of `{url, secret | secretEnv, events?}`. Every mistake names its key.
    static func parseWebhooks(_ raw: Any, at: String, environment: [String: String]) throws -> [BridgeConfiguration.Webhook] {
        guard let list = raw as? [Any] else { throw ConfigError(key: at, message: "must be a list of endpoints") }
        var hooks: [BridgeConfiguration.Webhook] = []
        for (i, item) in list.enumerated() {
            let here = "\(at)[\(i)]"
            guard let map = item as? [String: Any] else { throw ConfigError(key: here, message: "must be a mapping") }
            for k in map.keys where !["url", "secret", "secretEnv", "events"].contains(k) {
                throw ConfigError(key: "\(here).\(k)", message: "is not a known setting")
            }
            guard let url = map["url"] as? String, let parsed = URL(string: url), let scheme = parsed.scheme?.lowercased(),
                  ["http", "https"].contains(scheme), parsed.host?.isEmpty == false
            else {
                throw ConfigError(key: "\(here).url", message: "must be an http:// or https:// URL")
            }
            let secretText: String
            switch (map["secret"], map["secretEnv"]) {
            case (let s?, nil):
                guard let s = s as? String else { throw ConfigError(key: "\(here).secret", message: "must be a string") }
                secretText = s
            case (nil, let name?):
                guard let name = name as? String, !name.isEmpty else { throw ConfigError(key: "\(here).secretEnv", message: "must be a variable name") }
                guard let value = environment[name], !value.isEmpty else {
                    throw ConfigError(key: "\(here).secretEnv", message: "names the variable \(name), which is not set")
                }
                secretText = value
            case (nil, nil):
                throw ConfigError(key: "\(here).secret", message: "is required (or secretEnv, the variable that holds it)")
            case (_?, _?):
                throw ConfigError(key: "\(here).secret", message: "and secretEnv are both set; give one")
            }
            let secret: WebhookSecret
            switch WebhookSecret.parse(secretText) {
            case .success(let s): secret = s
            case .failure(let reason): throw ConfigError(key: "\(here).\(map["secret"] == nil ? "secretEnv" : "secret")", message: reason.description)
            }
            var events: Set<WebhookEvent>?
            if let rawEvents = map["events"] {
                guard let names = rawEvents as? [Any], !names.isEmpty else {
                    throw ConfigError(key: "\(here).events", message: "must list at least one event (or be left out for all)")
                }
                var set = Set<WebhookEvent>()
                for name in names {
                    guard let name = name as? String, let event = WebhookEvent(rawValue: name) else {
                        throw ConfigError(key: "\(here).events", message: "must name events among \(WebhookEvent.allCases.map(\.rawValue).joined(separator: ", "))")
                    }
                    set.insert(event)
                }
                events = set
            }
            hooks.append(.init(url: url, secret: secret, events: events))
        }
        return hooks
    }
}
