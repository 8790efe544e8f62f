import AsyncHTTPClient
import Foundation
import NIOHTTP1

/// Plays one SDK install against the sandbox: keeps the client state, tokens and request order the way the
/// protocol says a client must, so tests read like the workflow.
struct TestDevice {
    let harness: SandboxHarness
    let clientId: String
    let appCode: String
    var clientState: String?
    var contactToken: String?
    var refreshToken: String?
    var nextOrder: Int64 = Int64(Date().timeIntervalSince1970 * 1000)
    /// Whether requests carry `X-EMARSYS-SDK-VERSION` and `X-EMARSYS-SDK-MODE`, as the SDKs' always do.
    var sendsSDKHeaders = true

    init(_ harness: SandboxHarness, clientId: String = UUID().uuidString, appCode: String = "EMS12-34567") {
        self.harness = harness
        self.clientId = clientId
        self.appCode = appCode
    }

    static let deviceInfo = """
        {"platform": "android", "applicationVersion": "1.2.3", "deviceModel": "Pixel 8", "osVersion": "14",
         "sdkVersion": "3.11.0", "language": "en-US", "timezone": "+0100", "pushSettings": {"areNotificationsEnabled": true}}
        """

    /// Sends a request with the standard headers; stores the returned client state and tokens.
    /// `contactToken`: `nil` sends the stored one where the SDKs do (every call but the identified link
    /// `/contact` and the refresh `/contact-token`); `true`/`false` forces it on or off.
    mutating func send(
        _ method: HTTPMethod, _ route: String, body: String? = nil, version: String = "v3",
        contactToken sendContactToken: Bool? = nil, order: Int64? = nil, extraHeaders: [(String, String)] = []
    ) async throws -> Reply {
        let headers = nextHeaders(route, contactToken: sendContactToken, order: order) + extraHeaders
        let reply = try await harness.send(method, path(route, version: version), headers: headers, body: body)
        if let state = reply.clientState { clientState = state }
        if (200..<300).contains(reply.status), let json = reply.json {
            if let token = json["contactToken"] as? String { contactToken = token }
            if let token = json["refreshToken"] as? String { refreshToken = token }
        }
        return reply
    }

    /// The headers of the next request to `route` (uses up one request order).
    mutating func nextHeaders(_ route: String, contactToken sendContactToken: Bool? = nil, order: Int64? = nil) -> [(String, String)] {
        let requestOrder = order ?? nextOrder
        nextOrder = max(nextOrder, requestOrder) + 1
        var headers = [("X-Client-Id", clientId), ("X-Request-Order", String(requestOrder))]
        if sendsSDKHeaders { headers += [("X-EMARSYS-SDK-VERSION", "3.11.0"), ("X-EMARSYS-SDK-MODE", "production")] }
        if let clientState { headers.append(("X-Client-State", clientState)) }
        let sdkSendsContactToken = route != "/contact" && route != "/contact-token"
        if sendContactToken ?? sdkSendsContactToken, let contactToken { headers.append(("X-Contact-Token", contactToken)) }
        return headers
    }

    func path(_ route: String, version: String = "v3") -> String {
        "/\(version)/apps/\(appCode)/client\(route)"
    }

    mutating func register() async throws -> Reply {
        try await send(.POST, "", body: Self.deviceInfo)
    }

    mutating func linkAnonymous() async throws -> Reply {
        try await send(.POST, "/contact?anonymous=true", body: "{}")
    }

    mutating func refresh() async throws -> Reply {
        try await send(.POST, "/contact-token", body: #"{"refreshToken": "\#(refreshToken ?? "")"}"#)
    }

    mutating func linkIdentified(_ value: String = "jane@example.com") async throws -> Reply {
        try await send(.POST, "/contact", body: #"{"contactFieldId": 3, "contactFieldValue": "\#(value)"}"#)
    }

    mutating func setPushToken(_ token: String) async throws -> Reply {
        try await send(.PUT, "/push-token", body: #"{"pushToken": "\#(token)"}"#)
    }

    mutating func sendEvent(_ name: String = "session:start", version: String = "v3") async throws -> Reply {
        try await send(.POST, "/events", body: Self.eventBody(name), version: version)
    }

    static func eventBody(_ name: String = "session:start") -> String {
        """
        {"events": [{"type": "internal", "name": "\(name)", "timestamp": "2026-11-29T10:00:00.000Z",
          "attributes": {"origin": "test"}}], "clicks": [], "viewedMessages": []}
        """
    }
}
