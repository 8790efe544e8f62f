import Foundation
import PushbridgeConfig
import MobileEngage
import PushTokens
import Workflow

/// Turns validated JSON members into workflow writes. Every rejection names the member.
struct RequestParsing: Sendable {
    let registry: ProviderRegistry

    static let maxEventsPerRequest = 100
    static let maxAttributes = 50

    /// A device id or client id: 1 to 128 characters of A-Z, a-z, 0-9, '.', '_', ':' or '-'.
    /// (Checked byte by byte: a regular expression was compiled on every request, and ICU's `$` also
    /// matched before a final newline.)
    static func validDeviceId(_ id: String) -> Bool { Identifiers.isIdentifier(id, maxLength: 128) }

    /// A UTC offset such as +0100 or -0530: a sign and four digits.
    static func isUTCOffset(_ text: String) -> Bool {
        let utf8 = Array(text.utf8)
        guard utf8.count == 5, utf8[0] == UInt8(ascii: "+") || utf8[0] == UInt8(ascii: "-") else { return false }
        return utf8.dropFirst().allSatisfy { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
    }

    func provider(_ m: Members) throws -> ProviderDescriptor {
        let id = try m.string("provider", required: true, maxLength: 64)!
        guard let descriptor = registry.descriptor(for: id) else {
            throw Problem.invalid("provider", "Unknown provider '\(id)'; use one of \(registry.providerIDs.joined(separator: ", ")).")
        }
        return descriptor
    }

    /// The token member through its provider plugin; a rejection is 422 with the plugin's reason.
    func token(_ m: Members, provider: String, required: Bool) throws -> TokenRef? {
        let input: TokenInput
        switch m.object["token"] {
        case nil, .null?:
            if required { throw Problem.invalid("token", "token is required.") }
            return nil
        case .string(let s)?: input = .text(s)
        case .object(let o)?: input = .json(.object(o))
        default: throw Problem.invalid("token", "token must be a string, or for web push the subscription object.")
        }
        let environment = try m.string("environment", maxLength: 32)
        do {
            let n = try registry.normalize(provider: provider, input: input, environment: environment)
            return TokenRef(provider: n.provider, platform: n.platform, pushToken: n.pushToken, tokenHash: n.tokenHash)
        } catch {
            throw Problem(.unprocessableContent, "invalid-token", "Push token rejected", detail: error.reason, field: error.rule == "invalid-environment" ? "environment" : "token")
        }
    }

    func start(_ m: Members, app: BridgeConfiguration.App) throws -> StartIntent {
        let descriptor = try provider(m)
        let token = try token(m, provider: descriptor.id, required: false)
        var info = DeviceInfo()
        if let d = try m.object("device") {
            info.applicationVersion = try d.string("applicationVersion", maxLength: 256)
            info.deviceModel = try d.string("deviceModel", maxLength: 256)
            info.osVersion = try d.string("osVersion", maxLength: 256)
            info.language = try d.string("language", maxLength: 64)
            info.timezone = try d.string("timezone", maxLength: 5)
            if let tz = info.timezone, !Self.isUTCOffset(tz) {
                throw Problem.invalid("device.timezone", "device.timezone must be a UTC offset like +0100 or -0530.")
            }
            if let settings = try d.object("pushSettings") {
                guard settings.object.count <= 64 else { throw Problem.invalid("device.pushSettings", "device.pushSettings may hold at most 64 members.") }
                info.pushSettings = settings.object.mapValues(Self.pushSetting)
            }
        }
        let contact = try self.contact(m.object("contact"), app: app)
        let clientId = try m.string("clientId", maxLength: 128)
        if let clientId, !Identifiers.isIdentifier(clientId, maxLength: 128) {
            throw Problem.invalid("clientId", "clientId must be 1 to 128 characters of A-Z, a-z, 0-9, '.', '_', ':' or '-'.")
        }
        return StartIntent(provider: descriptor.id, platform: descriptor.platform, token: token, info: info, contact: contact, clientId: clientId)
    }

    /// A login: `{"fieldValue", "fieldId"?}`, or `{"openIdToken", "fieldId"?}` (an OpenID Connect ID token, which
    /// ME verifies and maps to the contact; the SDKs' authenticated contact). Never both.
    func contact(_ m: Members?, app: BridgeConfiguration.App) throws -> ContactRequest? {
        guard let m else { return nil }
        let fieldId = try m.int("fieldId", min: 1, max: Int64(Int32.max)) ?? app.contactFieldId
        let value = try m.string("fieldValue", maxLength: 1024)
        let openIdToken = try m.string("openIdToken", maxLength: Self.maxOpenIdTokenBytes)
        switch (value, openIdToken) {
        case (let value?, nil):
            if value.isEmpty { throw Problem.invalid(m.name("fieldValue"), "\(m.name("fieldValue")) must not be empty.") }
            return .identified(fieldId: fieldId, value: value)
        case (nil, let token?):
            guard !token.isEmpty, token.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7f }) else {
                throw Problem.invalid(m.name("openIdToken"), "\(m.name("openIdToken")) must be an OpenID Connect ID token (printable ASCII, no spaces).")
            }
            return .openId(fieldId: fieldId, token: token)
        case (.some, .some):
            throw Problem.invalid(m.name("openIdToken"), "Send either \(m.name("fieldValue")) or \(m.name("openIdToken")), not both.")
        case (nil, nil):
            throw Problem.invalid(m.name("fieldValue"), "\(m.name("fieldValue")) is required (or \(m.name("openIdToken")) for an authenticated login).")
        }
    }

    /// ID tokens are JWTs of a few hundred bytes to a few KiB.
    static let maxOpenIdTokenBytes = 8192

    func events(_ body: [String: JSONValue], now: Date) throws -> [CustomEvent] {
        guard case .array(let list)? = body["events"] else { throw Problem.invalid("events", "events must be a list of events.") }
        guard !list.isEmpty, list.count <= Self.maxEventsPerRequest else {
            throw Problem.invalid("events", "events must hold 1 to \(Self.maxEventsPerRequest) events.")
        }
        return try list.enumerated().map { i, item in
            let path = "events[\(i)]"
            guard case .object(let o) = item else { throw Problem.invalid(path, "\(path) must be an object.") }
            let m = Members(o, path: path)
            let name = try m.string("name", required: true, maxLength: 256)!
            var attributes: [String: String]?
            if let a = try m.object("attributes") {
                guard a.object.count <= Self.maxAttributes else { throw Problem.invalid(a.path, "\(a.path) may hold at most \(Self.maxAttributes) attributes.") }
                attributes = try a.object.reduce(into: [:]) { out, pair in
                    guard pair.key.utf8.count <= 256 else { throw Problem.invalid(a.path, "attribute names may hold at most 256 bytes.") }
                    guard case .string(let s) = pair.value else {
                        throw Problem.invalid("\(a.path).\(pair.key)", "attribute values must be strings.")
                    }
                    guard s.utf8.count <= 1024 else { throw Problem.invalid("\(a.path).\(pair.key)", "attribute values may hold at most 1024 bytes.") }
                    out[pair.key] = s
                }
            }
            var timestamp = MEWireFormat.timestamp(now)
            if let t = try m.string("timestamp", maxLength: 64) {
                guard let date = Self.rfc3339(t) else {
                    throw Problem.invalid("\(path).timestamp", "\(path).timestamp must be an RFC 3339 time, e.g. 2026-11-29T10:00:00.000Z.")
                }
                timestamp = MEWireFormat.timestamp(date)
            }
            let sessionId = try m.string("sessionId", maxLength: 256)
            if let sessionId, sessionId.isEmpty { throw Problem.invalid(m.name("sessionId"), "\(m.name("sessionId")) must not be empty.") }
            return CustomEvent(name: name, timestamp: timestamp, attributes: attributes, sessionId: sessionId)
        }
    }

    static func rfc3339(_ text: String) -> Date? {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let d = f.date(from: text) { return d }
        f.formatOptions = [.withInternetDateTime]
        return f.date(from: text)
    }

    static func pushSetting(_ v: JSONValue) -> MEJSON {
        switch v {
        case .null: .null
        case .bool(let b): .bool(b)
        case .integer(let i): .number(Double(i))
        case .double(let d): .number(d)
        case .string(let s): .string(s)
        case .array(let a): .array(a.map(pushSetting))
        case .object(let o): .object(o.mapValues(pushSetting))
        }
    }
}
