/// Payload of an issued `X-Client-State`: the backend's view of the whole client, as the real one encodes it.
struct ClientStatePayload: Encodable {
    var clientId: String
    var appCode: String
    var pushToken: String?
    var contact: SandboxContact?
    var iat: Int
    var seq: Int

    /// Writes `pushToken` and `contact` as explicit `null`s, so readers always find the keys.
    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(clientId, forKey: .clientId)
        try container.encode(appCode, forKey: .appCode)
        try container.encode(pushToken, forKey: .pushToken)
        try container.encode(contact, forKey: .contact)
        try container.encode(iat, forKey: .iat)
        try container.encode(seq, forKey: .seq)
    }

    enum CodingKeys: String, CodingKey { case clientId, appCode, pushToken, contact, iat, seq }
}

/// Payload of an issued contact token. `jti` makes two tokens minted in the same second distinct.
struct ContactTokenPayload: Encodable {
    var clientId: String
    var appCode: String
    var contact: SandboxContact
    var exp: Int
    var jti: String
}
