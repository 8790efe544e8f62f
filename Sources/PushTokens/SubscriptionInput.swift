/// Turns Web Push input into a subscription object, or the string the client sent instead.
///
/// A subscription arrives as a JSON object, or as that object serialised into a JSON string, and
/// some clients serialise twice; at most two levels of JSON text are decoded (push-tokens.md), so
/// a string that still holds a string after that is refused.
enum SubscriptionInput {
    enum Shape {
        case object([String: JSONValue])
        /// A plain string that is not JSON (a URL, a device token, ...), trimmed and non-empty.
        case token(String)
    }

    static func read(_ input: TokenInput) throws(TokenRejection) -> Shape {
        switch input {
        case .json(.object(let members)): return .object(members)
        case .json(.string(let text)), .text(let text): return try read(text: text, level: 0)
        case .json(.null):
            throw TokenRejection(TokenRejection.Rule.placeholderLiteral, "the subscription is JSON null; send the browser's PushSubscription.")
        case .json(let value):
            throw TokenRejection(
                TokenRejection.Rule.wrongInputType,
                "expected the browser's PushSubscription as a JSON object, got a JSON \(value.kindName).")
        }
    }

    private static func read(text: String, level: Int) throws(TokenRejection) -> Shape {
        try InputText.checkSize(text)
        let trimmed = InputText.trimmed(text)
        try InputText.checkPresent(trimmed)
        let first = trimmed.utf8.first
        guard first == UInt8(ascii: "{") || first == UInt8(ascii: "\"") || first == UInt8(ascii: "[") else {
            return .token(String(trimmed))
        }
        guard level < 2 else {
            throw TokenRejection(
                TokenRejection.Rule.tooDeeplyEncoded,
                "the subscription is JSON-encoded more than twice; send the object, or JSON.stringify it once.")
        }
        switch JSONParser.parse(Array(trimmed.utf8)) {
        case .object(let members)?: return .object(members)
        case .string(let inner)?: return try read(text: inner, level: level + 1)
        case let value?:
            throw TokenRejection(
                TokenRejection.Rule.wrongInputType,
                "expected the browser's PushSubscription as a JSON object, got a JSON \(value.kindName).")
        case nil:
            throw TokenRejection(
                TokenRejection.Rule.malformedJSON,
                "the subscription is not valid JSON (truncated or broken); send JSON.stringify(subscription) unchanged.")
        }
    }
}
