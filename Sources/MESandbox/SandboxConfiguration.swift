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

    public init(contactTokenLifetime: Duration = .seconds(3600), maxRequestLog: Int = 100_000) {
        self.contactTokenLifetime = contactTokenLifetime
        self.maxRequestLog = max(1, maxRequestLog)
    }
}

extension Duration {
    /// The duration as fractional seconds, for date arithmetic.
    var timeInterval: Double {
        let parts = self.components
        return Double(parts.seconds) + Double(parts.attoseconds) / 1e18
    }
}
