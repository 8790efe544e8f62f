/// Where the two ME services live. Never constants in code: the sandbox and production differ.
public struct MEEndpoints: Sendable, Hashable {
    /// Base URL of the client service, e.g. `https://me-client.eservice.emarsys.net` (may carry a path prefix).
    public var clientServiceURL: String
    /// Base URL of the event service, e.g. `https://mobile-events.eservice.emarsys.net`.
    public var eventServiceURL: String
    /// `v3` (the seed's workflow) or `v4` (what current mobile SDKs use) for the events route.
    public var eventsAPIVersion: String

    public init(clientServiceURL: String, eventServiceURL: String, eventsAPIVersion: String = "v3") {
        self.clientServiceURL = Self.trimmed(clientServiceURL)
        self.eventServiceURL = Self.trimmed(eventServiceURL)
        self.eventsAPIVersion = eventsAPIVersion
    }

    private static func trimmed(_ url: String) -> String {
        var url = url
        while url.hasSuffix("/") { url.removeLast() }
        return url
    }

    /// The method and full URL of `call` for the app `appCode`.
    public func route(of call: MECall, appCode: String) -> (method: String, url: String) {
        let client = "\(clientServiceURL)/v3/apps/\(appCode)/client"
        switch call {
        case .setClient: return ("POST", client)
        case .linkAnonymousContact: return ("POST", client + "/contact?anonymous=true")
        case .linkContact: return ("POST", client + "/contact")
        case .refreshContactToken: return ("POST", client + "/contact-token")
        case .setPushToken: return ("PUT", client + "/push-token")
        case .removePushToken: return ("DELETE", client + "/push-token")
        case .events: return ("POST", "\(eventServiceURL)/\(eventsAPIVersion)/apps/\(appCode)/client/events")
        }
    }
}
