/// Tunables of the sandbox backend.
///
/// The defaults mimic a production-like backend; tests shorten `contactTokenLifetime` to reach the
/// 401-and-refresh paths without waiting, and benchmarks can bound memory with `maxRequestLog`.
public struct SandboxConfiguration: Sendable {
    /// How long a contact token stays valid after it was issued.
    public var contactTokenLifetime: Duration
    /// How many entries the global request log keeps (oldest dropped first). The same bound applies to
    /// the per-client request and event lists, so a long benchmark cannot grow memory without limit.
    public var maxRequestLog: Int
    /// Strict mode at start (switchable at run time with `POST /_sandbox/strict`): a request that breaks a
    /// workflow invariant is answered `409 Conflict` and changes nothing, instead of only being recorded as a
    /// `SandboxViolation`. The violation list is bounded by `maxRequestLog` too.
    public var strict: Bool

    public init(contactTokenLifetime: Duration = .seconds(3600), maxRequestLog: Int = 100_000, strict: Bool = false) {
        self.contactTokenLifetime = contactTokenLifetime
        self.maxRequestLog = max(1, maxRequestLog)
        self.strict = strict
    }
}

extension Duration {
    /// The duration as fractional seconds, for date arithmetic.
    var timeInterval: Double {
        let parts = self.components
        return Double(parts.seconds) + Double(parts.attoseconds) / 1e18
    }
}
