import Foundation
import MobileEngage
import Workflow

/// A fault the model ME applies to one call.
enum SimFault: String, CaseIterable, Sendable {
    case none
    /// 503: nothing applied.
    case unavailable
    /// 429 with `Retry-After: 1`: nothing applied.
    case throttled
    /// The connection drops before ME reads the request: nothing applied, no answer.
    case dropBefore
    /// ME applies the call, then the answer is lost (a timeout): the bridge cannot know which.
    case dropAfter
    /// 400: ME refuses the call for good (a permanent error): nothing applied; the device fails until its backend
    /// writes again. Not on `DELETE /client/push-token`: the bridge reads a 4xx there as "ME holds no token on that
    /// client" and lets a device waiting for the token go on (`Reducer`); an ME that refused to remove a token it
    /// holds would break I1 or leave the waiter stuck whatever a client did.
    case rejected

    /// The faults that heal by themselves (retried with backoff).
    static let transient: [SimFault] = [.unavailable, .throttled, .dropBefore, .dropAfter]
}

/// A Mobile Engage backend in memory, for the simulation: the semantics the sandbox serves (contact tokens,
/// refresh, one push token per client, client states) and the invariants it checks on every request.
struct ModelME {
    struct Client {
        var appCode: String
        var pushToken: String?
        var contact: ContactRequest?
        /// Contact tokens that still authorise this client's calls.
        var validContactTokens: Set<String> = []
        var refreshTokens: Set<String> = []
        var lastOrder: Int64?
        /// The newest client state this client was answered with (nil: none delivered yet).
        var newestState: String?
        /// The bridge lost a commit (a crash): until it hears an answer again it may echo an older state and
        /// replay a call.
        var crashTolerance = false
        /// The last answer to a contact-token call was 401: the next call must refresh or link (I4).
        var owesRefresh = false
        /// A link was made since the last success of a contact-token call: the re-link is used up.
        var relinkedSinceSuccess = false
        /// The bridge was killed since the last success of a contact-token call: its refresh budget may be older
        /// than what ME saw (a success answered but not committed), so I4 is not judged until the next success.
        var budgetUnknown = false
        /// A 401 was answered on a contact-token call since the last success of one.
        var unauthorizedSinceSuccess = false
        /// A contact link ME made whose answer the bridge never got (a timeout) or never committed (a crash): the
        /// bridge cannot know of it.
        var unseenLink = false
    }

    var clients: [String: Client] = [:]
    var violations: [String] = []
    var refreshRevoked = false
    private var serial = 0

    private mutating func next(_ prefix: String) -> String {
        serial += 1
        return "\(prefix)-\(serial)"
    }

    /// Every contact token issued so far stops working (as `POST /_sandbox/contact-tokens/expire`).
    mutating func expireContactTokens() {
        for id in clients.keys { clients[id]?.validContactTokens.removeAll() }
    }

    /// The bridge crashed: whatever it had in flight may be replayed and its client states may be older.
    mutating func bridgeCrashed() {
        for id in clients.keys {
            clients[id]?.crashTolerance = true
            // A 401 whose handling was not committed is forgotten with the rest of the step.
            clients[id]?.owesRefresh = false
            // So is a link whose answer it had heard but not committed.
            clients[id]?.unseenLink = true
            clients[id]?.budgetUnknown = true
        }
    }

    mutating func handle(_ call: MECall, _ context: MERequestContext, fault: SimFault) -> MEAnswer {
        var c = clients[context.clientId] ?? Client(appCode: context.appCode)
        defer { clients[context.clientId] = c }
        let label = "\(call.endpoint) of client \(context.clientId)"

        // I2: strictly increasing request order, the newest client state echoed.
        if let last = c.lastOrder, context.requestOrder <= last {
            violations.append("I2: X-Request-Order \(context.requestOrder) not above \(last) on \(label)")
        }
        c.lastOrder = max(c.lastOrder ?? 0, context.requestOrder)
        if let newest = c.newestState, context.clientState != newest, !c.crashTolerance {
            violations.append("I2: stale X-Client-State on \(label)")
        }
        // I4: a 401 on a contact-token call is followed by a refresh or a link, unless the re-link is used up.
        let isRecovery: Bool
        switch call {
        case .refreshContactToken, .linkContact, .linkOpenIdContact, .linkAnonymousContact: isRecovery = true
        default: isRecovery = false
        }
        if c.owesRefresh && !isRecovery && !c.relinkedSinceSuccess && !c.crashTolerance && !c.budgetUnknown {
            violations.append("I4: \(label) after a 401, without a refresh or a re-link")
        }
        switch fault {
        case .unavailable:
            return deliver(.http(status: 503, retryAfterSeconds: nil, message: "unavailable"), to: &c)
        case .throttled:
            return deliver(.http(status: 429, retryAfterSeconds: 1, message: "throttled"), to: &c)
        case .rejected:
            if case .removePushToken = call { break }
            return deliver(.http(status: 400, retryAfterSeconds: nil, message: "bad request"), to: &c)
        case .dropBefore:
            return MEAnswer(outcome: .network(message: "connection dropped"), clientState: nil)
        case .none, .dropAfter:
            break
        }

        let expectation = (c.owesRefresh, c.relinkedSinceSuccess, c.unauthorizedSinceSuccess, c.budgetUnknown)
        let outcome = apply(call, context, to: &c, clientId: context.clientId)
        if fault == .dropAfter {
            // Applied, but the bridge never hears of it (nor of the client state, nor of a 401).
            (c.owesRefresh, c.relinkedSinceSuccess, c.unauthorizedSinceSuccess, c.budgetUnknown) = expectation
            if case .linkAnonymousContact = call { c.unseenLink = true }
            if case .linkContact = call { c.unseenLink = true }
            return MEAnswer(outcome: .network(message: "timed out"), clientState: nil)
        }
        return deliver(outcome, to: &c)
    }

    private mutating func deliver(_ outcome: MEAnswer.Outcome, to c: inout Client) -> MEAnswer {
        if case .success(let contactToken, _) = outcome, contactToken != nil { c.unseenLink = false }
        let state = next("cs")
        c.newestState = state
        // The bridge hears this answer: from here on it must echo what it is told.
        c.crashTolerance = false
        return MEAnswer(outcome: outcome, clientState: state)
    }

    private mutating func apply(_ call: MECall, _ context: MERequestContext, to c: inout Client, clientId: String) -> MEAnswer.Outcome {
        let unauthorized = MEAnswer.Outcome.http(status: 401, retryAfterSeconds: nil, message: "contact token invalid")
        if call.needsContactToken {
            guard let token = context.contactToken, c.validContactTokens.contains(token) else {
                c.owesRefresh = true
                c.unauthorizedSinceSuccess = true
                return unauthorized
            }
        }
        switch call {
        case .setClient:
            return .success(contactToken: nil, refreshToken: nil)
        case .linkAnonymousContact, .linkContact, .linkOpenIdContact:
            switch call {
            case .linkContact(let fieldId, let value): c.contact = .identified(fieldId: fieldId, value: value)
            case .linkOpenIdContact(let fieldId, let token): c.contact = .openId(fieldId: fieldId, token: token)
            default: c.contact = .anonymous
            }
            let (ct, rt) = (next("ct"), next("rt"))
            c.validContactTokens = [ct]
            c.refreshTokens = [rt]
            if c.unauthorizedSinceSuccess { c.relinkedSinceSuccess = true }
            c.owesRefresh = false
            return .success(contactToken: ct, refreshToken: rt)
        case .refreshContactToken(let refreshToken):
            guard !refreshRevoked, c.refreshTokens.contains(refreshToken) else { return unauthorized }
            let ct = next("ct")
            c.validContactTokens.insert(ct)
            c.owesRefresh = false
            return .success(contactToken: ct, refreshToken: nil)
        case .setPushToken(let token):
            // I1: one token, one client (of one app).
            for (other, record) in clients where other != clientId && record.appCode == c.appCode && record.pushToken == token {
                violations.append("I1: PUT /client/push-token for client \(clientId) while client \(other) holds that token")
            }
            c.pushToken = token
        case .removePushToken:
            c.pushToken = nil
        case .events:
            break
        }
        c.owesRefresh = false
        c.relinkedSinceSuccess = false
        c.unauthorizedSinceSuccess = false
        c.budgetUnknown = false
        return .success(contactToken: nil, refreshToken: nil)
    }

    /// Clients of `appCode` holding each token, for the at-rest half of I1.
    func holders(appCode: String) -> [String: [String]] {
        var byToken: [String: [String]] = [:]
        for (id, c) in clients where c.appCode == appCode {
            if let t = c.pushToken { byToken[t, default: []].append(id) }
        }
        return byToken
    }
}
