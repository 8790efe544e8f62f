import Foundation
import MobileEngage

/// A device as the customer backend names it: an app install within one ME application.
public struct DeviceKey: Sendable, Hashable, Codable, CustomStringConvertible {
    public var appCode: String
    public var deviceId: String
    public init(appCode: String, deviceId: String) {
        self.appCode = appCode
        self.deviceId = deviceId
    }
    public var description: String { "\(appCode)/\(deviceId)" }
}

/// A canonical push token, as the provider plugin produced it.
public struct TokenRef: Sendable, Hashable, Codable {
    public var provider: String
    public var platform: String
    /// The exact string for `PUT /client/push-token`. A secret: never logged, never in a status.
    public var pushToken: String
    /// The token's identity (for Web Push: the endpoint only). Safe to show.
    public var tokenHash: String
    public init(provider: String, platform: String, pushToken: String, tokenHash: String) {
        self.provider = provider
        self.platform = platform
        self.pushToken = pushToken
        self.tokenHash = tokenHash
    }
}

/// The contact a device should be linked to.
public enum ContactRequest: Sendable, Hashable, Codable {
    case anonymous
    /// `value` is a contact field value: a secret, never logged or shown.
    case identified(fieldId: Int, value: String)
    /// An authenticated login: ME finds the contact from an OpenID Connect ID token (the SDKs'
    /// `setAuthenticatedContact`). `token` is a secret: never logged, never shown, never compared for dedup.
    case openId(fieldId: Int, token: String)

    public var kind: String {
        switch self {
        case .anonymous: "anonymous"
        case .identified, .openId: "identified"
        }
    }

    /// The contact field id of an identified contact.
    public var fieldId: Int? {
        switch self {
        case .anonymous: nil
        case .identified(let fieldId, _), .openId(let fieldId, _): fieldId
        }
    }

    /// The link call for this contact.
    public var linkCall: MECall {
        switch self {
        case .anonymous: .linkAnonymousContact
        case .identified(let fieldId, let value): .linkContact(fieldId: fieldId, fieldValue: value)
        case .openId(let fieldId, let token): .linkOpenIdContact(fieldId: fieldId, openIdToken: token)
        }
    }
}

/// The device properties a backend sends with a start; missing fields get the contract's defaults.
public struct DeviceInfo: Sendable, Hashable, Codable {
    public var applicationVersion: String?
    public var deviceModel: String?
    public var osVersion: String?
    public var language: String?
    public var timezone: String?
    /// Left out: `DeviceInfo.defaultPushSettings` for the platform.
    public var pushSettings: [String: MEJSON]?

    public init(
        applicationVersion: String? = nil, deviceModel: String? = nil, osVersion: String? = nil,
        language: String? = nil, timezone: String? = nil, pushSettings: [String: MEJSON]? = nil
    ) {
        self.applicationVersion = applicationVersion
        self.deviceModel = deviceModel
        self.osVersion = osVersion
        self.language = language
        self.timezone = timezone
        self.pushSettings = pushSettings
    }

    /// The `POST /client` body for this device on `platform`.
    public func body(platform: String, sdkVersion: String) -> DeviceInfoBody {
        DeviceInfoBody(
            platform: platform,
            applicationVersion: applicationVersion ?? "unknown",
            deviceModel: deviceModel ?? "unknown",
            osVersion: osVersion ?? "unknown",
            sdkVersion: sdkVersion,
            language: language ?? "en",
            timezone: timezone ?? "+0000",
            pushSettings: pushSettings ?? Self.defaultPushSettings(platform: platform)
        )
    }

    /// What the SDK of `platform` reports in `pushSettings` on a device whose user allowed notifications: the
    /// mobile SDKs always send the object, and ME may read a missing one as "notifications not enabled". A
    /// device that handed its push token to the backend has them allowed. Web push sends none (nil).
    /// - Android (`DeviceInfo.kt`): notifications enabled, `IMPORTANCE_DEFAULT` (3), no channels known.
    /// - iOS (`EMSDeviceInfo.m`, `UNNotificationSettings`): authorized, alerts, badges and sounds on, banner
    ///   style, previews always, CarPlay and critical alerts not requested.
    public static func defaultPushSettings(platform: String) -> [String: MEJSON]? {
        switch platform {
        case "android", "android-huawei":
            return ["areNotificationsEnabled": .bool(true), "importance": .number(3), "channelSettings": .array([])]
        case "ios":
            return [
                "authorizationStatus": .string("authorized"),
                "soundSetting": .string("enabled"),
                "badgeSetting": .string("enabled"),
                "alertSetting": .string("enabled"),
                "notificationCenterSetting": .string("enabled"),
                "lockScreenSetting": .string("enabled"),
                "carPlaySetting": .string("notSupported"),
                "criticalAlertSetting": .string("notSupported"),
                "alertStyle": .string("banner"),
                "showPreviewsSetting": .string("always"),
                "providesAppNotificationSettings": .bool(false),
            ]
        default:
            return nil
        }
    }
}

/// A custom event as the backend sent it; the timestamp is already UTC with milliseconds.
public struct CustomEvent: Sendable, Hashable, Codable {
    public var name: String
    public var timestamp: String
    public var attributes: [String: String]?
    /// The backend's session id for this event, passed on to ME.
    public var sessionId: String?
    public init(name: String, timestamp: String, attributes: [String: String]?, sessionId: String? = nil) {
        self.name = name
        self.timestamp = timestamp
        self.attributes = attributes
        self.sessionId = sessionId
    }
}

/// A device start: what the backend says when an install starts.
public struct StartIntent: Sendable, Hashable, Codable {
    public var provider: String
    public var platform: String
    public var token: TokenRef?
    public var info: DeviceInfo
    public var contact: ContactRequest?
    public var clientId: String?
    public init(provider: String, platform: String, token: TokenRef?, info: DeviceInfo, contact: ContactRequest?, clientId: String?) {
        self.provider = provider
        self.platform = platform
        self.token = token
        self.info = info
        self.contact = contact
        self.clientId = clientId
    }
}

/// One accepted write that needs ME work. Intents of a device run in order, one at a time.
public enum IntentPayload: Sendable, Hashable, Codable {
    case start(StartIntent)
    case setToken(TokenRef)
    case removeToken
    case login(fieldId: Int, value: String)
    /// A login with an OpenID Connect ID token (a secret) instead of a field value.
    case openIdLogin(fieldId: Int, token: String)
    case logout
    case events([CustomEvent])
    /// The token with this hash moved to another device, or was reported dead (`cause`): remove it at ME if this
    /// device holds it there.
    case release(tokenHash: String, cause: ReleaseCause = .moved)
    /// The token with this hash, this device's newest requested one, moved to another device or was reported dead:
    /// the device is left with no token, so whatever ME holds on its client is removed (that token, or an older one).
    case releaseAll(tokenHash: String, cause: ReleaseCause = .moved)
    /// Remove the token at ME, then forget the device.
    case forget

    public var kind: String {
        switch self {
        case .start: "start"
        case .setToken: "set-token"
        case .removeToken: "remove-token"
        case .login, .openIdLogin: "login"
        case .logout: "logout"
        case .events: "events"
        case .release, .releaseAll: "release"
        case .forget: "forget"
        }
    }

    /// The backend asked for the device's token to go (a removal or a forget).
    public var removesToken: Bool {
        switch self {
        case .removeToken, .forget: true
        default: false
        }
    }

    /// The contact a login or logout asks for.
    public var requestedContact: ContactRequest? {
        switch self {
        case .login(let fieldId, let value): .identified(fieldId: fieldId, value: value)
        case .openIdLogin(let fieldId, let token): .openId(fieldId: fieldId, token: token)
        case .logout: .anonymous
        case .start(let start): start.contact
        default: nil
        }
    }

    /// Why a release intent was queued; nil for the others.
    public var releaseCause: ReleaseCause? {
        switch self {
        case .release(_, let cause), .releaseAll(_, let cause): cause
        default: nil
        }
    }

    /// Release intents jump the queue: another device waits for them.
    public var priority: Int {
        switch self {
        case .release, .releaseAll: return 0
        default: return 1
        }
    }
}

extension IntentPayload {
    /// Reads the JSON form (rows written before the binary stored form): the synthesised form, except that a release
    /// written before releases had a cause has none, and was a move. (Encoding stays synthesised.)
    public init(from decoder: any Decoder) throws {
        switch try Coded(from: decoder) {
        case .start(let s): self = .start(s)
        case .setToken(let t): self = .setToken(t)
        case .removeToken: self = .removeToken
        case .login(let fieldId, let value): self = .login(fieldId: fieldId, value: value)
        case .openIdLogin(let fieldId, let token): self = .openIdLogin(fieldId: fieldId, token: token)
        case .logout: self = .logout
        case .events(let e): self = .events(e)
        case .release(let hash, let cause): self = .release(tokenHash: hash, cause: cause ?? .moved)
        case .releaseAll(let hash, let cause): self = .releaseAll(tokenHash: hash, cause: cause ?? .moved)
        case .forget: self = .forget
        }
    }

    /// `IntentPayload`'s JSON shape, with the release cause optional.
    private enum Coded: Decodable {
        case start(StartIntent)
        case setToken(TokenRef)
        case removeToken
        case login(fieldId: Int, value: String)
        case openIdLogin(fieldId: Int, token: String)
        case logout
        case events([CustomEvent])
        case release(tokenHash: String, cause: ReleaseCause?)
        case releaseAll(tokenHash: String, cause: ReleaseCause?)
        case forget
    }
}

/// Why a device lets go of a token it holds (sent or queued).
public enum ReleaseCause: String, Sendable, Hashable, Codable {
    /// The token arrived for another device of the app, which waits for this device's removal.
    case moved
    /// A backend reported the token dead (`POST .../tokens/invalidate`); no device takes it.
    case invalidated
    /// The device was not seen for its app's `retention.unregisterAfter` (the retention sweep); no device takes it.
    case expired
}

/// A queued intent with its storage identity.
public struct Intent: Sendable, Hashable, Codable {
    /// Assigned by storage; increasing in acceptance order.
    public var id: Int64
    public var payload: IntentPayload
    /// When the API accepted it (the start event's timestamp).
    public var acceptedAt: Date
    /// Which sub-steps of this intent are done (see `IntentProgress`).
    public var progress: Int
    public init(id: Int64, payload: IntentPayload, acceptedAt: Date, progress: Int = 0) {
        self.id = id
        self.payload = payload
        self.acceptedAt = acceptedAt
        self.progress = progress
    }
}

/// Bits of `Intent.progress`.
public enum IntentProgress {
    /// The start event (or the custom events) of this intent reached ME, or failed permanently and was skipped.
    public static let eventsDone = 1
    /// An OpenID login's link reached ME: each one is sent once, even with the ID token of the contact linked now
    /// (the SDKs send every authenticated login).
    public static let contactLinked = 2
}
