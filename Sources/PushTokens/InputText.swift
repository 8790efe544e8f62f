/// The first steps every string token goes through, whatever its provider.
enum InputText {
    /// Inputs above this many UTF-8 bytes are refused before any parsing. Real tokens are far
    /// smaller (FCM at most 4096 characters, a Web Push subscription well under 2 KiB); the bound
    /// keeps the cost of hostile input flat.
    static let maxInputBytes = 16 * 1024

    /// Literals that client bugs send in place of a token (compared ignoring ASCII case).
    static let placeholderLiterals: Set<String> = ["null", "undefined", "nil", "none", "(null)", "nan"]

    /// `text` without leading and trailing Unicode white space (and byte-order marks).
    static func trimmed(_ text: String) -> Substring {
        let scalars = text.unicodeScalars
        func isSpace(_ scalar: Unicode.Scalar) -> Bool { scalar.properties.isWhitespace || scalar == "\u{FEFF}" }
        guard let start = scalars.firstIndex(where: { !isSpace($0) }),
              let last = scalars.lastIndex(where: { !isSpace($0) }) else { return "" }
        return Substring(scalars[start...last])
    }

    static func checkSize(_ text: String) throws(TokenRejection) {
        let size = text.utf8.count
        if size > maxInputBytes {
            throw TokenRejection(
                TokenRejection.Rule.inputTooLarge,
                "the input is \(size) bytes, more than the \(maxInputBytes) bytes any push token or subscription needs.")
        }
    }

    /// Refuses empty input and placeholder literals such as `null` and `undefined`.
    static func checkPresent(_ text: some StringProtocol) throws(TokenRejection) {
        if text.isEmpty {
            throw TokenRejection(TokenRejection.Rule.empty, "the token is empty (or only white space); send the token the device registered.")
        }
        if text.utf8.count <= 9, placeholderLiterals.contains(text.lowercased()) {
            throw TokenRejection(
                TokenRejection.Rule.placeholderLiteral,
                "the token is the placeholder literal '\(text)', which a client sends when it has no token yet; send the real token.")
        }
    }

    /// For string tokens (APNs, FCM, HMS, legacy Safari): size check, trim, one level of JSON
    /// quoting removed, trim again, then empty and placeholder checks.
    static func token(from text: String) throws(TokenRejection) -> String {
        try checkSize(text)
        var token = trimmed(text)
        if token.utf8.count >= 2, token.utf8.first == UInt8(ascii: "\""), token.utf8.last == UInt8(ascii: "\""),
           case .string(let inner)? = JSONParser.parse(Array(token.utf8)) {
            token = trimmed(inner)
        }
        try checkPresent(token)
        return String(token)
    }

    /// For string tokens given as `TokenInput`: the string, or a `wrong-input-type` rejection for JSON
    /// that is not a string (with a hint when it looks like another provider's input).
    static func token(from input: TokenInput, hints: ProviderHints, expected: String) throws(TokenRejection) -> String {
        switch input {
        case .text(let text), .json(.string(let text)):
            let token = try token(from: text)
            if let first = token.utf8.first, first == UInt8(ascii: "{") || first == UInt8(ascii: "["),
               let value = JSONParser.parse(Array(token.utf8)) {
                throw wrongType(value, hints: hints, expected: expected)
            }
            return token
        case .json(.null):
            throw TokenRejection(TokenRejection.Rule.placeholderLiteral, "the token is JSON null; send the real token.")
        case .json(let value):
            throw wrongType(value, hints: hints, expected: expected)
        }
    }

    private static func wrongType(_ value: JSONValue, hints: ProviderHints, expected: String) -> TokenRejection {
        var hint: ProviderHint?
        if case .object(let members) = value { hint = hints.hint(forObject: members) }
        return TokenRejection(
            TokenRejection.Rule.wrongInputType,
            "expected \(expected) as a string, got a JSON \(value.kindName).", hint: hint)
    }
}

extension JSONValue {
    /// "object", "array", ... for messages.
    var kindName: String {
        switch self {
        case .null: "null"
        case .bool: "boolean"
        case .integer, .double: "number"
        case .string: "string"
        case .array: "array"
        case .object: "object"
        }
    }
}
