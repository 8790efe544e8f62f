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
}
