import Foundation

/// One Mobile Engage v3 client call, as the official SDKs make it.
///
/// The bridge plays the SDK's part for every device it manages; a `MECall` is the
/// wire-level description of one such request, independent of transport.
public enum MECall: Sendable, Hashable {
    /// `POST {client}/v3/apps/{code}/client` with the device info body.
    case setClient(DeviceInfoBody)
    /// `POST {client}/v3/apps/{code}/client/contact?anonymous=true`.
    case linkAnonymousContact
    /// `POST {client}/v3/apps/{code}/client/contact` with the contact field id and value.
    case linkContact(fieldId: Int, fieldValue: String)
    /// `POST {client}/v3/apps/{code}/client/contact` with the contact field id and an OpenID Connect ID token
    /// (the SDKs' `setAuthenticatedContact`). The token is a secret.
    case linkOpenIdContact(fieldId: Int, openIdToken: String)
    /// `POST {client}/v3/apps/{code}/client/contact-token` with the refresh token.
    case refreshContactToken(refreshToken: String)
    /// `PUT {client}/v3/apps/{code}/client/push-token`.
    case setPushToken(String)
    /// `DELETE {client}/v3/apps/{code}/client/push-token`.
    case removePushToken
    /// `POST {events}/{v3|v4}/apps/{code}/client/events`. On v4, `deviceEventState` is the value ME's last
    /// events answer carried, echoed back as the SDKs do.
    case events([MEEvent], deviceEventState: MEJSON? = nil)

    /// The step name the bridge's status and `lastError` use for this call.
    public var step: String {
        switch self {
        case .setClient: "client"
        case .linkAnonymousContact, .linkContact, .linkOpenIdContact: "contact"
        case .refreshContactToken: "refresh"
        case .setPushToken: "push-token"
        case .removePushToken: "push-token-removal"
        case .events: "event"
        }
    }

    /// Whether the SDKs send `X-Contact-Token` on this call when one is stored.
    ///
    /// Both SDKs add it to every ME call whose URL does not end in `client/contact` or `/contact-token`
    /// (Android `ContactTokenHeaderMapper`, iOS `EMSContactTokenMapper`): so `POST /client` and the anonymous
    /// link (`.../contact?anonymous=true`) carry it, the identified links and the refresh do not.
    public var carriesContactToken: Bool {
        switch self {
        case .linkContact, .linkOpenIdContact, .refreshContactToken: false
        case .setClient, .linkAnonymousContact, .setPushToken, .removePushToken, .events: true
        }
    }

    /// Whether a 401 on this call means the contact token expired (refresh and replay). The bridge refreshes
    /// only for the calls that need a contact token; a 401 on `POST /client` or a link is permanent, by contract.
    public var needsContactToken: Bool {
        switch self {
        case .setPushToken, .removePushToken, .events: true
        case .setClient, .linkAnonymousContact, .linkContact, .linkOpenIdContact, .refreshContactToken: false
        }
    }

    /// The endpoint label used in metrics (never holds a value).
    public var endpoint: String {
        switch self {
        case .setClient: "client"
        case .linkAnonymousContact: "contact_anonymous"
        case .linkContact, .linkOpenIdContact: "contact"
        case .refreshContactToken: "contact_token"
        case .setPushToken: "push_token_put"
        case .removePushToken: "push_token_delete"
        case .events: "events"
        }
    }
}

/// The `POST /client` body. Field names are the wire names.
public struct DeviceInfoBody: Sendable, Hashable, Codable {
    public var platform: String
    public var applicationVersion: String
    public var deviceModel: String
    public var osVersion: String
    public var sdkVersion: String
    public var language: String
    public var timezone: String
    public var pushSettings: [String: MEJSON]?

    public init(
        platform: String, applicationVersion: String, deviceModel: String, osVersion: String,
        sdkVersion: String, language: String, timezone: String, pushSettings: [String: MEJSON]? = nil
    ) {
        self.platform = platform
        self.applicationVersion = applicationVersion
        self.deviceModel = deviceModel
        self.osVersion = osVersion
        self.sdkVersion = sdkVersion
        self.language = language
        self.timezone = timezone
        self.pushSettings = pushSettings
    }
}

/// Any JSON value ME sends or takes as is: `pushSettings` (Android sends booleans, numbers and channel lists;
/// iOS sends strings) and the v4 `deviceEventState`.
public indirect enum MEJSON: Sendable, Hashable, Codable {
    case string(String)
    case bool(Bool)
    case number(Double)
    case array([MEJSON])
    case object([String: MEJSON])
    case null

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let n = try? c.decode(Double.self) { self = .number(n) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([MEJSON].self) { self = .array(a) }
        else { self = .object(try c.decode([String: MEJSON].self)) }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .string(let s): try c.encode(s)
        case .bool(let b): try c.encode(b)
        case .number(let n): try c.encode(n)
        case .array(let a): try c.encode(a)
        case .object(let o): try c.encode(o)
        case .null: try c.encodeNil()
        }
    }
}

/// One event of the events envelope.
public struct MEEvent: Sendable, Hashable, Codable {
    public enum Kind: String, Sendable, Hashable, Codable { case `internal`, custom }
    public var type: Kind
    public var name: String
    /// UTC ISO-8601 with milliseconds, as the SDKs send it.
    public var timestamp: String
    public var attributes: [String: String]?
    /// The backend's session id, passed through (the SDKs send theirs when a session exists).
    public var sessionId: String?

    public init(type: Kind, name: String, timestamp: String, attributes: [String: String]? = nil, sessionId: String? = nil) {
        self.type = type
        self.name = name
        self.timestamp = timestamp
        self.attributes = (attributes?.isEmpty ?? true) ? nil : attributes
        self.sessionId = sessionId
    }
}
