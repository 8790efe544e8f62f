import Hummingbird

/// The ME operations the sandbox serves.
enum MERoute: String, Sendable {
    case registerClient = "client"
    case linkContact = "contact"
    case refreshContactToken = "contact-token"
    case setPushToken = "push-token-put"
    case deletePushToken = "push-token-delete"
    case events = "events"
}

/// What the route glue extracts from an HTTP request before the state machine sees it.
///
/// Keeping the state logic free of Hummingbird types lets it run synchronously under the lock.
struct MERequest: Sendable {
    /// Method, path and the anonymous flag (the only query the routes read): what a retry repeats.
    var call: String { method + " " + path + (anonymous ? "?anonymous=true" : "") }
    /// An events request on the v4 route (`/v4/apps/{code}/client/events`).
    var isEventsV4: Bool { route == .events && path.hasPrefix("/v4/") }

    var route: MERoute
    var method: String
    /// Path below the sandbox prefix, without the query.
    var path: String
    var appCode: String
    /// `?anonymous=true` on the contact route.
    var anonymous: Bool
    var clientId: String?
    var requestOrder: String?
    var clientState: String?
    var contactToken: String?
    var sdkVersion: String?
    var sdkMode: String?
    var body: [UInt8]
    /// Whether another request of the same client was in flight when this one's handler started.
    var overlapping = false
    /// Whether the bridge's invariants are checked on this request (`SandboxConfiguration.invariants`): the
    /// violations, the discipline counters and strict mode's 409s. The ME rules apply to every request.
    var checksInvariants = true
    /// The `Origin` header of a browser's request (logged, not judged).
    var origin: String?
}

/// A request below the sandbox's prefix that no ME or inspection route serves, or a CORS preflight: logged with
/// its answer like the ME requests, so a developer sees what an SDK tried.
struct UnroutedRequest: Sendable {
    var method: String
    var path: String
    var clientId: String?
    var requestOrder: String?
    var carriesContactToken: Bool
    var sdkVersion: String?
    var origin: String?
}

/// What the sandbox decided to answer.
struct MEAnswer: Sendable {
    var status: HTTPResponse.Status
    /// JSON body bytes, `nil` for no body.
    var body: [UInt8]?
    var clientState: String?
    var retryAfter: String?
    /// Fault mode "close": drop the connection instead of answering.
    var closeConnection = false
    /// Delay to apply before answering (fault `latencyMs`).
    var latencyMs: Int?
    /// The injected fault that decided or shaped the answer (for the debug log).
    var faultId: String?
    /// The body's media type (an injected proxy page is `text/html`).
    var contentType = "application/json"
}

/// Bytes of the JSON error body every rejection carries.
func errorBody(status: HTTPResponse.Status, message: String, field: String?, code: String? = nil) -> [UInt8] {
    var object: [String: SandboxJSON] = ["status": .int(status.code), "error": .string(message)]
    if let field { object["field"] = .string(field) }
    if let code { object["code"] = .string(code) }
    return SandboxHTTP.encode(SandboxJSON.object(object))
}
