/// One plugin per kind of token, chosen by the provider descriptor's `kind`: the plugin knows how
/// to read a token; the descriptor carries the provider's data (hosts, bounds, platform).
protocol TokenPlugin: Sendable {
    func normalize(_ request: TokenRequest) throws(TokenRejection) -> NormalizedToken
}

/// Everything a plugin needs for one token.
struct TokenRequest: Sendable {
    var input: TokenInput
    var environment: String?
    var descriptor: ProviderDescriptor
    /// The other providers, to say which one fits when this one does not.
    var hints: ProviderHints
}

enum TokenPlugins {
    static func plugin(for kind: ProviderDescriptor.Kind) -> any TokenPlugin {
        switch kind {
        case .apns: APNsPlugin()
        case .opaque: OpaqueTokenPlugin()
        case .webpush: WebPushPlugin()
        case .safari: SafariPlugin()
        }
    }
}
