/// Where the two ME services live. Never constants in code: the sandbox and production differ.
public struct MEEndpoints: Sendable, Hashable {
    /// Base URL of the client service, e.g. `https://me-client.eservice.emarsys.net` (may carry a path prefix).
    public var clientServiceURL: String
    /// Base URL of the event service, e.g. `https://mobile-events.eservice.emarsys.net`.
    public var eventServiceURL: String

    public init(clientServiceURL: String, eventServiceURL: String) {
        self.clientServiceURL = Self.trimmed(clientServiceURL)
        self.eventServiceURL = Self.trimmed(eventServiceURL)
    }

    private static func trimmed(_ url: String) -> String {
        var url = url
        while url.hasSuffix("/") { url.removeLast() }
        return url
    }

    /// The method and full URL of `call` for the app and addressing in `context`.
    public func route(of call: MECall, context: MERequestContext) -> (method: String, url: String) {
        let code = context.appCode
        let client = "\(clientServiceURL)/v3/\(context.codePath.rawValue)/\(code)/client"
        switch call {
        case .setClient: return ("POST", client)
        case .linkAnonymousContact: return ("POST", client + "/contact?anonymous=true")
        case .linkContact, .linkOpenIdContact: return ("POST", client + "/contact")
        case .refreshContactToken: return ("POST", client + "/contact-token")
        case .setPushToken: return ("PUT", client + "/push-token")
        case .removePushToken: return ("DELETE", client + "/push-token")
        case .events: return ("POST", "\(eventServiceURL)/\(context.eventsAPIVersion.rawValue)/apps/\(code)/client/events")
        }
    }
}

/// The path segment before the code on client-service calls: mobile app codes (`/v3/apps/{code}/client`), or
/// web push domain codes, which the later web SDK builds address as `/v3/domains/{code}/client`.
public enum MECodePath: String, Sendable, Hashable, CaseIterable {
    case apps, domains
}

/// The events API: `v4` is what the mobile SDKs use whenever an app code is set; the web SDK stays on `v3`.
public enum MEEventsAPIVersion: String, Sendable, Hashable, CaseIterable {
    case v3, v4

    /// The SDKs' choice for a device on this ME `platform`: v4 for mobile, v3 for the web push platforms.
    public static func sdkDefault(platform: String) -> MEEventsAPIVersion {
        MEPlatform.isWeb(platform) ? .v3 : .v4
    }
}

/// ME's `platform` values, as the SDKs send them in `POST /client`.
public enum MEPlatform {
    public static let web: Set<String> = ["chrome", "firefox", "safari", "edge"]
    public static let mobile: Set<String> = ["android", "android-huawei", "ios"]
    public static func isWeb(_ platform: String) -> Bool { web.contains(platform) }
}
