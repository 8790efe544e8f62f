import Foundation

extension ConfigLoader {
    /// `apps[i].retention`: `{unregisterAfter?, forgetAfter?}`, each a duration such as `270d`, `36h`, `15m` or `90s`.
    static func parseRetention(_ raw: Any, at: String) throws -> BridgeConfiguration.Retention {
        guard let map = raw as? [String: Any] else { throw ConfigError(key: at, message: "must be a mapping with unregisterAfter and/or forgetAfter") }
        for k in map.keys where !["unregisterAfter", "forgetAfter"].contains(k) {
            throw ConfigError(key: "\(at).\(k)", message: "is not a known setting")
        }
        func duration(_ name: String) throws -> TimeInterval? {
            guard let value = map[name] else { return nil }
            guard let text = value as? String, let seconds = parseDuration(text) else {
                throw ConfigError(key: "\(at).\(name)", message: "must be a duration such as 270d, 36h, 15m or 90s (at least 1s, at most 100 years)")
            }
            return seconds
        }
        return BridgeConfiguration.Retention(unregisterAfter: try duration("unregisterAfter"), forgetAfter: try duration("forgetAfter"))
    }

    /// `<n>s|m|h|d` in seconds: a whole number from 1, at most 100 years; nil for anything else.
    static func parseDuration(_ text: String) -> TimeInterval? {
        let digits = text.dropLast()
        guard let unit = text.last, digits.allSatisfy({ ("0"..."9").contains($0) }), let n = Int(digits), n >= 1 else { return nil }
        let scale: Int
        switch unit {
        case "s": scale = 1
        case "m": scale = 60
        case "h": scale = 3600
        case "d": scale = 86_400
        default: return nil
        }
        let (seconds, overflow) = n.multipliedReportingOverflow(by: scale)
        guard !overflow, seconds <= 100 * 366 * 86_400 else { return nil }
        return TimeInterval(seconds)
    }
}
