/// When a delivery that was not answered 2xx is tried again: exponential backoff with full jitter, never sooner than
/// the receiver's `Retry-After`, given up once the message is older than the endpoint's maximum age. Pure.
public struct WebhookRetry: Sendable, Hashable {
    public var initialDelayMs: Int64
    public var maxDelayMs: Int64
    /// How long a message is tried, from its creation (`webhooks.maxAgeHours`).
    public var maxAgeMs: Int64

    public init(initialDelayMs: Int64 = 1000, maxDelayMs: Int64 = 600_000, maxAgeMs: Int64 = 24 * 3_600_000) {
        self.initialDelayMs = initialDelayMs
        self.maxDelayMs = maxDelayMs
        self.maxAgeMs = maxAgeMs
    }

    public enum Decision: Sendable, Hashable {
        case retry(atMs: Int64)
        case giveUp
    }

    /// After attempt number `attempts` (1 for the first) of a message created at `createdAtMs` failed at `nowMs`.
    /// `jitter` is in [0, 1); `retryAfterMs` is what the receiver asked for, if anything.
    public func after(attempts: Int, createdAtMs: Int64, nowMs: Int64, retryAfterMs: Int64?, jitter: Double) -> Decision {
        let exponent = min(max(attempts - 1, 0), 40)
        let ceiling = min(maxDelayMs, initialDelayMs.multipliedReportingOverflow(by: Int64(1) << exponent).overflow ? maxDelayMs : initialDelayMs << exponent)
        var delay = Int64(Double(ceiling) * min(max(jitter, 0), 0.999_999))
        delay = max(delay, 1)
        if let retryAfterMs, retryAfterMs > delay { delay = min(retryAfterMs, maxAgeMs) }
        let at = nowMs + delay
        // A wait that would pass the message's age still gets one last attempt at its end; after that, given up.
        let deadline = createdAtMs + maxAgeMs
        if at > deadline { return nowMs < deadline ? .retry(atMs: deadline) : .giveUp }
        return .retry(atMs: at)
    }
}
