import Crypto
import Foundation

/// Payload of an issued `X-Client-State`: the backend's view of the whole client, with the claims the SDKs decode.
/// The web SDK reads `pushToken` and `contactField` (null when no contact is linked, `{}` when the contact is
/// anonymous, `{contactFieldId, contactFieldValue, contactFieldEncrypted}` once identified) to know who is logged in;
/// the client's properties (the members of its last `POST /client` body) sit beside them, as ME's client state
/// carries the client. `clientId`, `appCode`, `iat` and `seq` are the sandbox's own (`seq` names a state in
/// violation details without showing it).
struct ClientStatePayload: Encodable {
    var clientId: String
    var appCode: String
    var pushToken: String?
    var contact: SandboxContact?
    var properties: [String: SandboxJSON]
    var iat: Int
    var seq: Int

    private struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(_ string: String) { stringValue = string }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    static let ownClaims: Set<String> = ["clientId", "appCode", "pushToken", "contactField", "iat", "seq"]

    /// Writes `pushToken` and `contactField` as explicit `null`s, so readers always find the keys.
    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Key.self)
        for (name, value) in properties where !Self.ownClaims.contains(name) {
            try container.encode(value, forKey: Key(name))
        }
        try container.encode(clientId, forKey: Key("clientId"))
        try container.encode(appCode, forKey: Key("appCode"))
        try container.encode(pushToken, forKey: Key("pushToken"))
        try container.encode(Self.contactField(contact), forKey: Key("contactField"))
        try container.encode(iat, forKey: Key("iat"))
        try container.encode(seq, forKey: Key("seq"))
    }

    static func contactField(_ contact: SandboxContact?) -> SandboxJSON {
        guard let contact else { return .null }
        switch contact.kind {
        case .anonymous:
            return .object([:])
        case .identified:
            var field: [String: SandboxJSON] = ["contactFieldEncrypted": .bool(false)]
            if let id = contact.fieldId { field["contactFieldId"] = .int(id) }
            // An OpenID login names no value the client sent (ME reads it from the ID token).
            field["contactFieldValue"] = contact.fieldValue.map(SandboxJSON.string) ?? .null
            return .object(field)
        }
    }
}

/// Payload of an issued contact token: `contactReference` (the contact ME linked: one per identified contact of an
/// app, whichever client links it; a fresh one per anonymous link), `contactId` once identified, `exp`. `jti` makes
/// two tokens minted in the same second distinct; `clientId` and `appCode` are the sandbox's own.
struct ContactTokenPayload: Encodable {
    var clientId: String
    var appCode: String
    var contactReference: String
    var contactId: Int?
    var exp: Int
    var jti: String

    init(clientId: String, appCode: String, contact: SandboxContact, anonymousReference: String, exp: Int, jti: String) {
        self.clientId = clientId
        self.appCode = appCode
        self.exp = exp
        self.jti = jti
        guard contact.kind == .identified else {
            (contactReference, contactId) = (anonymousReference, nil)
            return
        }
        // Stable per contact and app for a field value, and not the value itself; an OpenID login names no value,
        // so its contact is the link's.
        let basis = contact.fieldValue.map { "\(appCode)|\(contact.fieldId ?? 0)|\($0)" } ?? "link|\(anonymousReference)"
        let digest = Array(SHA256.hash(data: Data(basis.utf8)))
        contactReference = digest.prefix(12).map { String(format: "%02x", $0) }.joined()
        contactId = digest.prefix(6).reduce(0) { $0 << 8 | Int($1) }
    }

    enum CodingKeys: String, CodingKey { case clientId, appCode, contactReference, contactId, exp, jti }

    /// `contactId` as an explicit `null` while anonymous.
    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(clientId, forKey: .clientId)
        try container.encode(appCode, forKey: .appCode)
        try container.encode(contactReference, forKey: .contactReference)
        try container.encode(contactId, forKey: .contactId)
        try container.encode(exp, forKey: .exp)
        try container.encode(jti, forKey: .jti)
    }
}
