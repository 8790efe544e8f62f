/// Tunables of the sandbox backend.
///
/// The defaults mimic a production-like backend; tests shorten `contactTokenLifetime` to reach the
/// 401-and-refresh paths without waiting, and benchmarks can bound memory with `maxRequestLog`.
public struct SandboxConfiguration: Sendable {
    /// Whose requests the bridge's invariants (`bridge-contract.md`, "Invariants": one request at a time, increasing
    /// `X-Request-Order`, the newest client state echoed, the SDKs' headers and bodies) are checked on. The ME rules
    /// (routes, bodies, contact tokens: what the sandbox answers 4xx to) apply to every client either way.
    public enum InvariantScope: String, Sendable, CaseIterable {
        /// Only pushbridge's own traffic (a `User-Agent` starting with `pushbridge/`): an official SDK pointed at the
        /// sandbox is never flagged for what ME allows (the web SDK numbers its requests per service, for one).
        case pushbridge
        /// Every client: for tests that speak for the bridge by hand.
        case all
    }

    /// How long a contact token stays valid after it was issued.
    public var contactTokenLifetime: Duration
    /// How many entries the global request log keeps (oldest dropped first). The same bound applies to
    /// the per-client request and event lists, so a long benchmark cannot grow memory without limit.
    public var maxRequestLog: Int
    /// Strict mode at start (switchable at run time with `POST /_sandbox/strict`): a request that breaks a
    /// workflow invariant is answered `409 Conflict` and changes nothing, instead of only being recorded as a
    /// `SandboxViolation`. The violation list is bounded by `maxRequestLog` too. Only requests the invariants are
    /// checked on (`invariants`) can be refused so.
    public var strict: Bool
    public var invariants: InvariantScope
    /// Origins a browser may call the sandbox from (CORS): `["*"]` (the default: any page, it is a local
    /// development backend), a list of exact origins (`https://shop.example`), or empty (no CORS headers at all).
    public var allowedOrigins: [String]

    public init(
        contactTokenLifetime: Duration = .seconds(3600), maxRequestLog: Int = 100_000, strict: Bool = false,
        invariants: InvariantScope = .pushbridge, allowedOrigins: [String] = ["*"]
    ) {
        self.contactTokenLifetime = contactTokenLifetime
        self.maxRequestLog = max(1, maxRequestLog)
        self.strict = strict
        self.invariants = invariants
        self.allowedOrigins = allowedOrigins
    }

    /// Whether `userAgent` names pushbridge's ME client (`MEClient.userAgent`).
    static func isBridge(userAgent: String?) -> Bool {
        userAgent?.hasPrefix("pushbridge/") ?? false
    }
}

extension Duration {
    /// The duration as fractional seconds, for date arithmetic.
    var timeInterval: Double {
        let parts = self.components
        return Double(parts.seconds) + Double(parts.attoseconds) / 1e18
    }
}
