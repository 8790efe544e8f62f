import Foundation

/// The contact a client is linked to, as the sandbox sees it.
public struct SandboxContact: Sendable, Hashable, Codable {
    public enum Kind: String, Sendable, Codable { case anonymous, identified }
    public var kind: Kind
    /// Contact field id of an identified contact; `nil` when anonymous.
    public var fieldId: Int?
    /// Contact field value of an identified contact; `nil` when anonymous or linked with an OpenID token.
    public var fieldValue: String?

    public init(kind: Kind, fieldId: Int? = nil, fieldValue: String? = nil) {
        self.kind = kind
        self.fieldId = fieldId
        self.fieldValue = fieldValue
    }

    /// Always writes every key (explicit `null`s), so consumers see a fixed shape.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(kind, forKey: .kind)
        try container.encode(fieldId, forKey: .fieldId)
        try container.encode(fieldValue, forKey: .fieldValue)
    }
}

/// One stored event (from an events envelope).
public struct SandboxEvent: Sendable, Hashable, Codable {
    public var type: String
    public var name: String
    public var timestamp: String
    public var attributes: [String: String]?
    public var sessionId: String?
}

/// Per-client counters; every field is how many times the thing happened (successful answers, unless named otherwise).
public struct SandboxCounts: Sendable, Hashable, Codable {
    public var client = 0
    public var anonymousLinks = 0
    public var identifiedLinks = 0
    public var refreshes = 0
    public var pushTokenPuts = 0
    public var pushTokenDeletes = 0
    public var eventRequests = 0
    /// Requests whose `X-Request-Order` was not strictly greater than the previous one of this client.
    public var orderViolations = 0
    /// Requests that did not echo the newest `X-Client-State` issued to this client (counted after the first issue).
    public var staleClientStates = 0
    /// Requests answered 401.
    public var unauthorized = 0
    /// `deviceEventState` values issued in v4 events answers.
    public var deviceEventStates = 0
}

/// One request of a client, as kept in its history.
public struct SandboxClientRequest: Sendable, Hashable, Codable {
    public var method: String
    public var path: String
    /// The `X-Request-Order` value, when it parsed.
    public var requestOrder: Int64?
    /// The status answered; 0 when the connection was closed without an answer (fault mode "close").
    public var status: Int
    public var at: Date
    /// Whether the request echoed the newest client state issued to this client (true when none was issued yet).
    public var sentClientState: Bool
}

/// The inspection view of one client (`GET /_sandbox/clients/{clientId}`).
public struct SandboxClientView: Sendable, Codable {
    public var clientId: String
    /// The app code of the last request of this client.
    public var appCode: String
    /// `nil` until the client registered with `POST /client`.
    public var platform: String?
    /// The last accepted `POST /client` body; `nil` until the client registered.
    public var properties: SandboxJSON?
    public var pushToken: String?
    public var contact: SandboxContact?
    public var events: [SandboxEvent]
    public var requestCount: Int
    public var counts: SandboxCounts
    public var requests: [SandboxClientRequest]

    /// Always writes every key (explicit `null`s), so consumers see a fixed shape.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(clientId, forKey: .clientId)
        try container.encode(appCode, forKey: .appCode)
        try container.encode(platform, forKey: .platform)
        try container.encode(properties, forKey: .properties)
        try container.encode(pushToken, forKey: .pushToken)
        try container.encode(contact, forKey: .contact)
        try container.encode(events, forKey: .events)
        try container.encode(requestCount, forKey: .requestCount)
        try container.encode(counts, forKey: .counts)
        try container.encode(requests, forKey: .requests)
    }
}

/// One entry of the global request log (`GET /_sandbox/requests`).
public struct SandboxRequestRecord: Sendable, Hashable, Codable {
    /// Position in the log, starting at 1 and increasing by one per ME request.
    public var seq: Int
    public var method: String
    public var path: String
    public var clientId: String?
    public var requestOrder: Int64?
    /// The status answered; 0 when the connection was closed without an answer (fault mode "close").
    public var status: Int
    public var at: Date
    /// Whether an injected fault decided (or shaped) the answer.
    public var fault: Bool
    /// Whether the request carried `X-Contact-Token` (never the value).
    public var contactToken: Bool
    /// The `X-EMARSYS-SDK-VERSION` header.
    public var sdkVersion: String?
    /// The ME operation the request reached (`client`, `contact`, `contact-token`, `push-token-put`,
    /// `push-token-delete`, `events`); `null` for a request no ME route serves (answered 404) and for a CORS
    /// preflight (`OPTIONS`).
    public var route: String?
    /// Whether the bridge's invariants were checked on it (pushbridge's own traffic; see
    /// `SandboxConfiguration.invariants`); the ME rules were, always.
    public var invariantsChecked: Bool
    /// The `Origin` header a browser sent, if any.
    public var origin: String?
}

/// A breach of a workflow invariant (`bridge-contract.md`, "Invariants") that the sandbox saw on the wire
/// (`GET /_sandbox/violations`).
///
/// `detail` never holds a push token, contact token, refresh token, client state or contact field value: a push
/// token is named by `sha256:` and the first 12 hex digits of its SHA-256, another client by its client id.
public struct SandboxViolation: Sendable, Hashable, Codable {
    /// The stable `kind` strings.
    public enum Kind: String, Sendable, Hashable, Codable, CaseIterable {
        /// I1: `PUT /client/push-token` of a token that another client of the same app code holds.
        case tokenOnTwoClients = "token-on-two-clients"
        /// I2: a request of a client arrived while another request of that client was still in flight.
        case overlappingRequest = "overlapping-request"
        /// I2: `X-Request-Order` not greater than the previous one of this client.
        case requestOrderNotIncreasing = "request-order-not-increasing"
        /// I2: `X-Client-State` missing or not the newest one the sandbox sent to this client.
        case staleClientState = "stale-client-state"
        /// `X-Contact-Token` on a call where the SDKs send none (identified contact link, refresh).
        case unexpectedContactToken = "unexpected-contact-token"
        /// `X-Request-Order`, `X-EMARSYS-SDK-VERSION` or `X-EMARSYS-SDK-MODE` missing, or `X-Contact-Token`
        /// missing on a push-token PUT or DELETE or on events.
        case missingHeader = "missing-header"
        /// `POST /client` of a mobile platform (`android`, `android-huawei`, `ios`) without `pushSettings`: the
        /// mobile SDKs always send it, and ME may read a missing one as "notifications not enabled".
        case missingPushSettings = "missing-push-settings"
        /// A v4 events request whose `deviceEventState` is none the caller can hold: neither the one its last v4
        /// events request carried (none before the first) nor one an answer issued since. The mobile SDKs echo the
        /// newest; an older one of those is accepted on a retry of the same call, or when an answer after it was
        /// delayed by a latency fault (answers the caller never read).
        case deviceEventStateNotEchoed = "device-event-state-not-echoed"
        /// A v4 events request that carries an older `deviceEventState` the caller may hold where it should have
        /// read the newest: as `stale-client-state`, what a step answered but never committed leaves behind (a
        /// kill, a storage outage), once per lost answer; a bridge that drops states it read shows it again and again.
        case staleDeviceEventState = "stale-device-event-state"
    }

    /// Position in the violation list: 1 for the first since the start (or the last clear), then one more each.
    public var seq: Int
    /// One of `Kind`'s raw values.
    public var kind: String
    public var clientId: String
    public var appCode: String
    public var method: String
    /// Path below the sandbox prefix, without the query.
    public var path: String
    public var detail: String
    public var at: Date
    /// The `seq` of the offending request in `GET /_sandbox/requests`.
    public var requestSeq: Int?

    public init(
        seq: Int, kind: String, clientId: String, appCode: String, method: String, path: String, detail: String, at: Date,
        requestSeq: Int? = nil
    ) {
        self.seq = seq
        self.kind = kind
        self.clientId = clientId
        self.appCode = appCode
        self.method = method
        self.path = path
        self.detail = detail
        self.at = at
        self.requestSeq = requestSeq
    }
}
