/// The outcome of one ME call, classified the way the workflow needs it.
public struct MEAnswer: Sendable, Hashable {
    public enum Outcome: Sendable, Hashable {
        /// 2xx. For contact calls, the tokens from the body (a link answer may leave out the refresh token).
        case success(contactToken: String?, refreshToken: String?)
        /// A non-2xx HTTP answer. `retryAfterSeconds` is parsed from `Retry-After` (seconds or HTTP date).
        case http(status: Int, retryAfterSeconds: Double?, message: String)
        /// No usable HTTP answer: refused, reset, timed out, or a 2xx body that could not be read.
        case network(message: String)
    }

    public var outcome: Outcome
    /// `X-Client-State` from the answer, when present (any status).
    public var clientState: String?
    /// The `deviceEventState` of a 2xx v4 events answer, when it carried one.
    public var deviceEventState: MEJSON?
    /// The HTTP status ME answered with (nil: no answer), for the history; `outcome` is what the workflow reads.
    public var status: Int?

    public init(outcome: Outcome, clientState: String?, deviceEventState: MEJSON? = nil, status: Int? = nil) {
        self.outcome = outcome
        self.clientState = clientState
        self.deviceEventState = deviceEventState
        if let status {
            self.status = status
        } else if case .http(let code, _, _) = outcome {
            self.status = code
        }
    }
}
