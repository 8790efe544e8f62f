/// Why a token was refused, in a form both a program and a person can use.
///
/// `rule` is a stable kebab-case id (see `TokenRejection.Rule`); `reason` is a sentence that starts
/// with the rule id, says what to do, and names a better provider when one fits.
public struct TokenRejection: Error, Sendable, Hashable, CustomStringConvertible {
    public var rule: String
    public var reason: String
    public var suggestedProvider: String?

    public init(rule: String, reason: String, suggestedProvider: String? = nil) {
        self.rule = rule
        self.reason = reason
        self.suggestedProvider = suggestedProvider
    }

    public var description: String { reason }
}
