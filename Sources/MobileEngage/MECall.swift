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
    /// `POST {client}/v3/apps/{code}/client/contact-token` with the refresh token.
    case refreshContactToken(refreshToken: String)
    /// `PUT {client}/v3/apps/{code}/client/push-token`.
    case setPushToken(String)
    /// `DELETE {client}/v3/apps/{code}/client/push-token`.
    case removePushToken
    /// `POST {events}/{v3|v4}/apps/{code}/client/events`.
    case events([MEEvent])

    /// The step name the bridge's status and `lastError` use for this call.
    public var step: String {
        switch self {
        case .setClient: "client"
        case .linkAnonymousContact, .linkContact: "contact"
        case .refreshContactToken: "refresh"
        case .setPushToken: "push-token"
        case .removePushToken: "push-token-removal"
        case .events: "event"
        }
    }

    /// Whether the SDKs send `X-Contact-Token` on this call.
    ///
    /// Contact links and the refresh call carry no contact token (the anonymous link may;
    /// we leave it out, since a stale token there only confuses the backend).
    public var carriesContactToken: Bool {
        switch self {
        case .setClient, .linkAnonymousContact, .linkContact, .refreshContactToken: false
        case .setPushToken, .removePushToken, .events: true
        }
    }

    /// The endpoint label used in metrics (never holds a value).
    public var endpoint: String {
        switch self {
        case .setClient: "client"
        case .linkAnonymousContact: "contact_anonymous"
        case .linkContact: "contact"
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
    public var pushSettings: [String: PushSettingValue]?

    public init(
        platform: String, applicationVersion: String, deviceModel: String, osVersion: String,
        sdkVersion: String, language: String, timezone: String, pushSettings: [String: PushSettingValue]? = nil
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

/// A `pushSettings` value: Android sends booleans, numbers and channel lists; iOS sends strings.
public indirect enum PushSettingValue: Sendable, Hashable, Codable {
    case string(String)
    case bool(Bool)
    case number(Double)
    case array([PushSettingValue])
    case object([String: PushSettingValue])
    case null

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let n = try? c.decode(Double.self) { self = .number(n) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([PushSettingValue].self) { self = .array(a) }
        else { self = .object(try c.decode([String: PushSettingValue].self)) }
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

    public init(type: Kind, name: String, timestamp: String, attributes: [String: String]? = nil) {
        self.type = type
        self.name = name
        self.timestamp = timestamp
        self.attributes = (attributes?.isEmpty ?? true) ? nil : attributes
    }
}
