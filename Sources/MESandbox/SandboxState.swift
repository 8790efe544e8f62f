import Foundation

/// Everything the sandbox knows about one client id.
struct ClientRecord: Sendable {
    let clientId: String
    /// App code of the last request of this client.
    var appCode: String
    /// App code of the last successful `POST /client`; `nil` until then. Contact links require it to match.
    var registeredAppCode: String?
    var platform: String?
    var properties: SandboxJSON?
    var pushToken: String?
    var contact: SandboxContact?
    var events: RingBuffer<SandboxEvent>
    var counts = SandboxCounts()
    var requests: RingBuffer<SandboxClientRequest>
    var requestCount = 0
    var lastRequestOrder: Int64?
    /// The newest `X-Client-State` issued to this client, and how many were issued.
    var newestClientState: String?
    /// The newest client state went out in an answer an injected latency delayed, which the caller may have given
    /// up on (its request timed out) before reading it: the state before it is accepted too, until the next answer.
    var newestMayBeUnread = false
    var stateBeforeNewest: String?
    /// Method and path of this client's previous request: a request that repeats it is a retry.
    var previousCall: String?
    var clientStateSeq = 0
    /// The newest `deviceEventState` a v4 events answer carried, and the one before it.
    var deviceEventState: SandboxJSON?
    var deviceEventStateBefore: SandboxJSON?
    /// The caller may not have read the newest: it went out in an answer an injected latency delayed, or a retry
    /// of the same call carried the one before it (the answer was lost to a timeout or a crash before its commit).
    /// The one before is accepted until a new one is issued: no other answer hands the newest to the caller.
    var deviceEventStateMayBeUnread = false
    /// Live tokens of the current contact link (superseded by the next link).
    var contactTokens: [String] = []
    var refreshTokens: [String] = []

    init(clientId: String, appCode: String, historyCapacity: Int) {
        self.clientId = clientId
        self.appCode = appCode
        self.events = RingBuffer(capacity: historyCapacity)
        self.requests = RingBuffer(capacity: historyCapacity)
    }

    /// Whether `request` echoes the newest client state this client can have read. The state before the newest
    /// is accepted when the newest went out in an answer a latency fault delayed, and on a retry of the same call
    /// (same method and path): a caller whose request timed out (a loaded machine, a slow network) never read the
    /// answer and tries the call again with the state it has. A caller that reads an answer and drops its state is
    /// still caught on its next, different call (and, exactly, by the workflow simulation's model of ME).
    func echoesNewestState(_ request: MERequest) -> Bool {
        guard let newest = newestClientState else { return true }
        let sent = request.clientState
        let retry = previousCall == request.call
        return sent == newest || ((newestMayBeUnread || retry) && sent == stateBeforeNewest)
    }

    /// Marks the newest `deviceEventState` unread when a request carries the one before it (a retry of the same
    /// call, or a `stale-device-event-state`): one finding per answer that went unread, not one per request after.
    mutating func noteDeviceEventState(of request: MERequest) {
        guard request.isEventsV4, let newest = deviceEventState else { return }
        let sent = SandboxJSON.parse(request.body)?.objectValue?["deviceEventState"]
        if sent != newest && sent == deviceEventStateBefore { deviceEventStateMayBeUnread = true }
    }

    var view: SandboxClientView {
        SandboxClientView(
            clientId: clientId, appCode: appCode, platform: platform, properties: properties,
            pushToken: pushToken, contact: contact, events: events.elements, requestCount: requestCount,
            counts: counts, requests: requests.elements
        )
    }
}

/// A push token within one app code (key of `SandboxState.pushTokenHolders`).
struct PushTokenKey: Hashable, Sendable {
    var appCode: String
    var token: String
}

/// A contact token the sandbox issued; tokens are validated by lookup, never by signature.
struct ContactTokenRecord: Sendable {
    var clientId: String
    var appCode: String
    var contact: SandboxContact
    var expiresAt: Date
    /// Set by `POST /_sandbox/contact-tokens/expire`.
    var forcedExpired = false
}

/// A refresh token the sandbox issued.
struct RefreshTokenRecord: Sendable {
    var clientId: String
    var appCode: String
    var contact: SandboxContact
    /// Set by `POST /_sandbox/refresh-tokens/revoke`.
    var revoked = false
}

/// The whole mutable state of one sandbox, guarded by a single lock in `MESandbox`.
///
/// One lock (not one per client) keeps the global request log and fault counts exactly ordered; the work done
/// under it is small and synchronous, so contention stays low even under a benchmark.
struct SandboxState: Sendable {
    let historyCapacity: Int
    var clients: [String: ClientRecord] = [:]
    var contactTokens: [String: ContactTokenRecord] = [:]
    var refreshTokens: [String: RefreshTokenRecord] = [:]
    var faults = FaultList()
    var log: RingBuffer<SandboxRequestRecord>
    var nextLogSeq = 1
    /// The newest violations (bounded like the log); `violationCount` counts all of them since the last clear.
    var violations: RingBuffer<SandboxViolation>
    var violationCount = 0
    /// Strict mode: a request with a violation is answered 409 and changes nothing.
    var strict: Bool
    /// Requests per client id between handler entry and the state decision (see `enterRequest`).
    var inFlight: [String: Int] = [:]
    /// Which clients hold each push token, per app code: the index behind the `token-on-two-clients` check.
    var pushTokenHolders: [PushTokenKey: Set<String>] = [:]

    init(historyCapacity: Int, strict: Bool = false) {
        self.historyCapacity = historyCapacity
        self.log = RingBuffer(capacity: historyCapacity)
        self.violations = RingBuffer(capacity: historyCapacity)
        self.strict = strict
    }

    /// Forgets clients, tokens, faults, the log and the violations. Strict mode is a setting and stays; the
    /// in-flight counters describe requests still running, so they stay too.
    mutating func reset() {
        let strict = self.strict
        let inFlight = self.inFlight
        self = SandboxState(historyCapacity: historyCapacity, strict: strict)
        self.inFlight = inFlight
    }

    mutating func expireAllContactTokens() -> Int {
        for key in contactTokens.keys { contactTokens[key]?.forcedExpired = true }
        return contactTokens.count
    }

    mutating func revokeAllRefreshTokens() -> Int {
        for key in refreshTokens.keys { refreshTokens[key]?.revoked = true }
        return refreshTokens.count
    }

    func requestLog(clientId: String?, limit: Int?) -> [SandboxRequestRecord] {
        var records = log.elements
        if let clientId { records = records.filter { $0.clientId == clientId } }
        if let limit, limit >= 0, records.count > limit { records = Array(records.suffix(limit)) }
        return records
    }
}
