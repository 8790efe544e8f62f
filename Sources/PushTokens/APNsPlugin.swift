/// APNs device tokens of apps (ME platform `ios`): bytes of variable length, canonical as lowercase
/// hex; the environment travels beside the token, never inside it.
struct APNsPlugin: TokenPlugin {
    static let environments: Set<String> = ["production", "sandbox"]

    func normalize(_ request: TokenRequest) throws(TokenRejection) -> NormalizedToken {
        let descriptor = request.descriptor
        let environment = try Self.environment(request.environment)
        let token = try InputText.token(from: request.input, hints: request.hints, expected: "an APNs device token")
        // Before the reader drops spaces or decodes base64url (which has '-'): see WrapperIDs.
        try WrapperIDs.check(token, descriptor: descriptor)
        let bytes = try DeviceTokenReader.bytes(token, bounds: descriptor.deviceTokenBytes, hints: request.hints)
        let hex = HexCoding.encode(bytes)
        return NormalizedToken(
            provider: descriptor.id, platform: descriptor.platform, namespace: descriptor.namespace,
            pushToken: hex, tokenHash: pushTokenHash(namespace: descriptor.namespace, key: hex),
            environment: environment)
    }

    /// "production" or "sandbox", in any ASCII case; nil stays nil. Anything else is refused rather
    /// than guessed, because a token sent to the wrong APNs environment fails every delivery.
    static func environment(_ value: String?) throws(TokenRejection) -> String? {
        guard let value else { return nil }
        let lowered = value.lowercased()
        guard environments.contains(lowered) else {
            throw TokenRejection(
                TokenRejection.Rule.invalidEnvironment,
                "the APNs environment '\(value.prefix(64))' is not 'production' or 'sandbox' (a development build's token belongs to 'sandbox').")
        }
        return lowered
    }
}
