/// Opaque string tokens (FCM, HMS): kept exactly as issued, never case-changed. Google advises
/// against validating FCM tokens with a pattern, so only what no token can contain is refused;
/// the per-provider limits (length bound, APNs look-alike check, wrapper ids) come from the descriptor.
struct OpaqueTokenPlugin: TokenPlugin {
    func normalize(_ request: TokenRequest) throws(TokenRejection) -> NormalizedToken {
        let descriptor = request.descriptor
        let hints = request.hints
        let token = try InputText.token(from: request.input, hints: hints, expected: "a \(descriptor.id) token")
        try WrapperIDs.check(token, descriptor: descriptor)
        if token.containsBytes("://") {
            throw TokenRejection(
                TokenRejection.Rule.looksLikeURL,
                "a URL is not a \(descriptor.id) token.", hint: hints.hint(forURL: token))
        }
        try checkCharacters(token)
        let length = token.utf8.count  // ASCII only from here, so bytes are characters
        if let maxLength = descriptor.maxLength, length > maxLength {
            throw TokenRejection(
                TokenRejection.Rule.tooLong,
                "the token is \(length) characters, more than the \(maxLength) a \(descriptor.id) token may have.")
        }
        if descriptor.rejectsHexDeviceTokens == true {
            let bytes = Array(token.utf8)
            if length % 2 == 0, (64...400).contains(length), bytes.allSatisfy(HexCoding.isHexDigit) {
                throw TokenRejection(
                    TokenRejection.Rule.looksLikeAPNsToken,
                    "a string of \(length) hex digits is an APNs device token, not a \(descriptor.id) token.",
                    hint: hints.hint(forText: token))
            }
        }
        return NormalizedToken(
            provider: descriptor.id, platform: descriptor.platform, namespace: descriptor.namespace,
            pushToken: token, tokenHash: pushTokenHash(namespace: descriptor.namespace, key: token))
    }

    /// White space inside, control characters, non-ASCII, quotes and backslashes never occur in
    /// issued tokens; they come from copy-paste, double JSON encoding or a broken client, and would
    /// be sent on as a token that cannot work. (Refusing quotes also keeps normalisation idempotent:
    /// a token that still looked quoted after one unquoting would lose its quotes the next time.)
    private func checkCharacters(_ token: String) throws(TokenRejection) {
        // Fast path over bytes: an all-ASCII token is settled here. The first control or non-ASCII
        // byte sends us to the scalar loop, which stops at that scalar with the right rule (white
        // space such as U+00A0, control character, or non-ASCII).
        var needsScalarCheck = false
        for byte in token.utf8 {
            if byte == 0x20 || (0x09...0x0D).contains(byte) {
                throw TokenRejection(
                    TokenRejection.Rule.innerWhitespace,
                    "the token has white space inside it (only outer white space is trimmed); send the token as issued.")
            }
            if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") {
                throw TokenRejection(
                    TokenRejection.Rule.invalidCharacters,
                    "the token has a quote or backslash inside, left over from JSON encoding it more than once; send the token itself.")
            }
            if byte < 0x20 || byte >= 0x7F {
                needsScalarCheck = true
                break
            }
        }
        guard needsScalarCheck else { return }
        for scalar in token.unicodeScalars {
            if scalar.properties.isWhitespace {
                throw TokenRejection(
                    TokenRejection.Rule.innerWhitespace,
                    "the token has white space inside it (only outer white space is trimmed); send the token as issued.")
            }
            if scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value) {
                throw TokenRejection(
                    TokenRejection.Rule.controlCharacter,
                    "the token has a control character (U+\(HexCoding.encode([UInt8(scalar.value)]).uppercased())); it was corrupted on the way.")
            }
            if !scalar.isASCII {
                throw TokenRejection(
                    TokenRejection.Rule.nonASCII,
                    "the token has non-ASCII characters; issued tokens are ASCII, so it was corrupted on the way.")
            }
        }
    }
}
