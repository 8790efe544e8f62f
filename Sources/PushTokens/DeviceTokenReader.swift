/// Reads APNs device-token bytes from the textual forms clients really send (push-tokens.md, APNs):
/// hex in either case, hex groups separated by spaces, the old NSData description `<abcd ef01 ...>`,
/// and base64 or base64url, padded or not.
///
/// Ambiguity policy: a string made only of hex digits (and spaces) is always hex, even when it
/// would also be valid base64; an odd number of digits is then an error, not a cue to try base64.
/// `0x`-prefixed hex and the iOS 13 `{length = 32, bytes = 0x... }` description are refused rather
/// than guessed: the first is no documented encoding, the second has its middle bytes elided.
enum DeviceTokenReader {
    static func bytes(_ token: String, bounds: ClosedRange<Int>, hints: ProviderHints) throws(TokenRejection) -> [UInt8] {
        // No textual form takes more than 3 characters per byte (hex with a space after every
        // byte), so longer input is refused before any decoding.
        if token.utf8.count > bounds.upperBound * 3 + 2 {
            throw tooLong("over \(bounds.upperBound)", bounds: bounds)
        }
        let text = Array(token.utf8)
        let bytes = try decode(text, token: token, hints: hints)
        if bytes.count < bounds.lowerBound {
            throw TokenRejection(
                TokenRejection.Rule.tooShort,
                "the device token is \(bytes.count) bytes; APNs tokens are at least \(bounds.lowerBound) bytes, so it was cut short or is not a device token.")
        }
        if bytes.count > bounds.upperBound {
            throw tooLong("\(bytes.count)", bounds: bounds)
        }
        return bytes
    }

    private static func tooLong(_ size: String, bounds: ClosedRange<Int>) -> TokenRejection {
        TokenRejection(
            TokenRejection.Rule.tooLong,
            "the device token is \(size) bytes, above the \(bounds.upperBound)-byte maximum this service accepts.")
    }

    private static func decode(_ text: [UInt8], token: String, hints: ProviderHints) throws(TokenRejection) -> [UInt8] {
        if token.hasPrefix("{length") || token.containsBytes("bytes = 0x") {
            throw TokenRejection(
                TokenRejection.Rule.elidedDescription,
                "this is the iOS 13+ description of the token's Data ('{length = ..., bytes = 0x... }'), whose middle bytes are elided; send the hex of all the bytes (map each byte to '%02x').")
        }
        if token.containsBytes("://") {
            var sentence = "a URL is not a device token."
            if let host = EndpointURL.roughHost(of: token), APNsHosts.isProviderAPIHost(host) {
                sentence = "this is an APNs provider-API URL; send only the device token it ends with."
            }
            throw TokenRejection(TokenRejection.Rule.looksLikeURL, sentence, hint: hints.hint(forURL: token))
        }
        var digits = text[...]
        if text.count > 2, text[0] == UInt8(ascii: "0"), text[1] | 0x20 == UInt8(ascii: "x"),
           text.dropFirst(2).allSatisfy(HexCoding.isHexDigit) {
            throw TokenRejection(
                TokenRejection.Rule.hexPrefix,
                "the token starts with a '0x' prefix, which is no documented token encoding; send the plain hex digits without '0x'.")
        }
        if text.first == UInt8(ascii: "<") && text.last == UInt8(ascii: ">") && text.count >= 2 {
            digits = text.dropFirst().dropLast()
            guard digits.allSatisfy({ HexCoding.isHexDigit($0) || $0 == UInt8(ascii: " ") }) else {
                throw TokenRejection(
                    TokenRejection.Rule.invalidCharacters,
                    "an NSData description ('<...>') may hold only hex digits and spaces.")
            }
        }
        let isHex = digits.contains(where: HexCoding.isHexDigit)
            && digits.allSatisfy { HexCoding.isHexDigit($0) || $0 == UInt8(ascii: " ") }
        if isHex {
            let compact = digits.filter { $0 != UInt8(ascii: " ") }
            guard let bytes = HexCoding.decode(compact) else {
                throw TokenRejection(
                    TokenRejection.Rule.hexOddLength,
                    "the hex token has an odd number of digits (\(compact.count)); a token is whole bytes, so a digit is missing or extra.")
            }
            return bytes
        }
        if ProviderHints.looksLikeFCMToken(text) {
            throw TokenRejection(
                TokenRejection.Rule.looksLikeFCMToken,
                "the token has the shape of an FCM registration token ('<id>:<token>'), not an APNs device token.",
                hint: hints.hint(forText: token))
        }
        if text.allSatisfy(Base64Coding.isAlphabetByte) {
            guard let bytes = Base64Coding.decode(text) else {
                throw TokenRejection(
                    TokenRejection.Rule.invalidBase64,
                    "the token is neither hex nor well-formed base64 (bad padding or length, or both '+/' and '-_' alphabets).")
            }
            return bytes
        }
        throw TokenRejection(
            TokenRejection.Rule.invalidCharacters,
            "the token has characters that are neither hex digits nor base64 (such as '.', white space inside, or non-ASCII); send hex or base64 of the token bytes.",
            hint: hints.hint(forText: token))
    }
}

/// Host names of Apple's APNs provider API, which apps must never hand out as a Web Push endpoint.
enum APNsHosts {
    static func isProviderAPIHost(_ host: String) -> Bool {
        host == "api.push.apple.com" || host == "api.sandbox.push.apple.com" || host == "api.development.push.apple.com"
    }
}
