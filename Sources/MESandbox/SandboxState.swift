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
    /// The `deviceEventState`s this client may hold, oldest first: the one its last v4 events request carried
    /// (none before the first), then each one an answer issued since. The last is the one a caller that read every
    /// answer holds; an earlier one means answers went unread (a timeout, a crash before their commit).
    var eventStates: [IssuedEventState] = [IssuedEventState(state: nil, delayed: false)]
    /// Live tokens of the current contact link (superseded by the next link).
    var contactTokens: [String] = []
    /// The current link's own reference: an anonymous contact's `contactReference` in its contact tokens.
    var linkReference = ""
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

    /// After a v4 events request: the state it carried is the one the caller holds, so the ones issued after it
    /// were never read and can no longer come back (one finding per answer that went unread, not one per request
    /// after). A state it cannot hold (a `device-event-state-not-echoed`) changes nothing: the next request is
    /// judged the same way.
    mutating func noteDeviceEventState(of request: MERequest) {
        guard request.isEventsV4 else { return }
        let sent = SandboxJSON.parse(request.body)?.objectValue?["deviceEventState"]
        guard eventStates.contains(where: { $0.state == sent }) else { return }
        eventStates = [IssuedEventState(state: sent, delayed: false)]
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

/// A `deviceEventState` a v4 events answer carried, and whether an injected latency delayed that answer (so the
/// caller may have given up on it before reading it).
struct IssuedEventState: Sendable {
    var state: SandboxJSON?
    var delayed: Bool
}
