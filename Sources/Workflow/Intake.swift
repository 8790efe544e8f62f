import Foundation

/// A write the public API accepted as valid, before deduplication.
public enum DeviceWrite: Sendable, Hashable {
    case start(StartIntent)
    case setToken(TokenRef)
    case removeToken
    case login(fieldId: Int, value: String)
    case openIdLogin(fieldId: Int, token: String)
    case logout
    case events([CustomEvent])
    case forget

    public var payload: IntentPayload {
        switch self {
        case .start(let s): .start(s)
        case .setToken(let t): .setToken(t)
        case .removeToken: .removeToken
        case .login(let f, let v): .login(fieldId: f, value: v)
        case .openIdLogin(let f, let t): .openIdLogin(fieldId: f, token: t)
        case .logout: .logout
        case .events(let e): .events(e)
        case .forget: .forget
        }
    }
}

/// What storage knows about a device when a write arrives, read in the write's own transaction.
public struct IntakeView: Sendable {
    public var exists: Bool
    /// The engine's view of the device (nil for a new device).
    public var state: DeviceState?
    /// The device's queued intents, oldest first (release intents included).
    public var queued: [Intent]
    /// The device of this app that holds the write's token hash, sent or queued (nil when none or this one).
    public var tokenHolder: DeviceKey?

    public init(exists: Bool, state: DeviceState?, queued: [Intent], tokenHolder: DeviceKey?) {
        self.exists = exists
        self.state = state
        self.queued = queued
        self.tokenHolder = tokenHolder
    }
}

/// The API-side decision for a write. Pure; storage carries it out in the same transaction.
public enum IntakeDecision: Sendable, Hashable {
    /// Nothing would change at ME: answer 200 with `deduplicated: true`, store nothing.
    case deduplicated
    /// The write needs a device that does not exist (a login for an unknown device, say).
    case unknownDevice
    /// Queue `payload`. `collapse`: this device's queued token requests are superseded first (`Intake.collapse`:
    /// only the newest token is sent). `takeTokenFrom`: the token moves from that device (queue a release there
    /// first).
    case enqueue(IntentPayload, collapse: Bool, takeTokenFrom: DeviceKey?)
}

public enum Intake {
    public static func decide(_ write: DeviceWrite, view: IntakeView, policy: AppPolicy) -> IntakeDecision {
        switch write {
        case .start(let start):
            // A start with a token is the device's newest token request: it supersedes the queued ones.
            let hasToken = start.token != nil
            return .enqueue(write.payload, collapse: hasToken, takeTokenFrom: hasToken ? view.tokenHolder : nil)
        case .forget:
            return view.exists ? .enqueue(.forget, collapse: true, takeTokenFrom: nil) : .unknownDevice
        default:
            break
        }
        guard view.exists else {
            // A token for a device we never saw creates it; the rest needs a device.
            if case .setToken = write { return .enqueue(write.payload, collapse: true, takeTokenFrom: view.tokenHolder) }
            return .unknownDevice
        }
        // A write is deduplicated only when it asks for what the device would end with both ways: with the queue as
        // it stands (a failed device's head intent is retried on its next wake) and without that head (whose failure
        // a repeated request retries). A logout that meets a failed login is stored, or the login's retry would win.
        let live = liveQueue(view)
        let all = view.queued[...]
        switch write {
        case .setToken(let token):
            if newestToken(view, live)?.pushToken == token.pushToken && newestToken(view, all)?.pushToken == token.pushToken { return .deduplicated }
            return .enqueue(write.payload, collapse: true, takeTokenFrom: view.tokenHolder)
        case .removeToken:
            if newestToken(view, live) == nil && newestToken(view, all) == nil { return .deduplicated }
            return .enqueue(.removeToken, collapse: true, takeTokenFrom: nil)
        case .login(let fieldId, let value):
            let asked = ContactRequest.identified(fieldId: fieldId, value: value)
            if newestContact(view, live, policy: policy) == asked && newestContact(view, all, policy: policy) == asked { return .deduplicated }
            return .enqueue(write.payload, collapse: false, takeTokenFrom: nil)
        case .openIdLogin:
            // Never deduplicated: an ID token is a secret that is not compared, and each one is a fresh
            // authentication that ME checks (the SDKs send every `setAuthenticatedContact`).
            return .enqueue(write.payload, collapse: false, takeTokenFrom: nil)
        case .logout:
            if newestContact(view, live, policy: policy) == .anonymous && newestContact(view, all, policy: policy) == .anonymous { return .deduplicated }
            return .enqueue(.logout, collapse: false, takeTokenFrom: nil)
        case .events:
            return .enqueue(write.payload, collapse: false, takeTokenFrom: nil)
        case .start, .forget:
            return .enqueue(write.payload, collapse: false, takeTokenFrom: nil)
        }
    }

    /// The queued intents that still count as requests: a failed device's head intent does not
    /// (after a permanent failure the same token or contact is sent again).
    static func liveQueue(_ view: IntakeView) -> ArraySlice<Intent> {
        if view.state?.failed == true, let first = view.queued.firstIndex(where: { $0.payload.priority > 0 }) {
            var q = view.queued
            q.remove(at: first)
            return q[...]
        }
        return view.queued[...]
    }

    /// The newest token of the device: queued, else the one it is heading to.
    static func newestToken(_ view: IntakeView, _ live: ArraySlice<Intent>) -> TokenRef? {
        for intent in live.reversed() {
            switch intent.payload {
            case .setToken(let t): return t
            case .start(let s) where s.token != nil: return s.token
            case .removeToken, .forget: return nil
            case .release(let hash, _) where view.state?.pushTokenSent?.tokenHash == hash: return nil
            case .releaseAll: return nil
            default: continue
            }
        }
        // Nothing queued: what the device is heading to (its wanted token, sent or still to be sent, as to a new client
        // after a start that changed it), not only what ME holds now.
        return view.state?.wantedToken ?? view.state?.pushTokenSent
    }

    /// The newest contact of the device: queued, else wanted, else linked; a device never linked counts as
    /// anonymous when the app links anonymous contacts.
    static func newestContact(_ view: IntakeView, _ live: ArraySlice<Intent>, policy: AppPolicy) -> ContactRequest? {
        for intent in live.reversed() {
            if let contact = intent.payload.requestedContact { return contact }
            // What comes after a forget starts a fresh device: nothing before it counts.
            if case .forget = intent.payload { return policy.anonymousContacts ? .anonymous : nil }
        }
        // Nothing queued: the contact the device is heading to (still to be linked to a new client, say), else the
        // one linked.
        if let wanted = view.state?.wantedContact { return wanted }
        if let linked = view.state?.linkedContact { return linked }
        return policy.anonymousContacts ? .anonymous : nil
    }
}

/// Changes to the queued intents of one device, decided by `Intake` and applied by storage in the write's
/// transaction: drop some, rewrite some.
public struct QueueEdits: Sendable, Hashable {
    public struct Rewrite: Sendable, Hashable {
        public var id: Int64
        public var payload: IntentPayload
    }
    public var dropIds: [Int64] = []
    /// Intents kept with a new payload (a start without the token it carried); their token hash and wait go.
    public var rewrites: [Rewrite] = []
    public init() {}
}

extension Intake {
    /// The edits an accepted intent makes to its own device's queue. A forget supersedes every intent queued before
    /// it but the releases (another device may wait on one; the forget's removal covers it anyway): the device and
    /// everything asked of it go, so nothing asked before it, a step ME refuses for good included, can hold the
    /// forget back. A newer token request collapses the token intents (`collapse`).
    public static func edits(for payload: IntentPayload, collapse: Bool, queued: [Intent], state: DeviceState?) -> QueueEdits {
        if case .forget = payload {
            var edits = QueueEdits()
            edits.dropIds = queued.filter { $0.payload.releaseCause == nil }.map(\.id)
            return edits
        }
        return collapse ? Self.collapse(queued: queued, state: state) : QueueEdits()
    }

    /// A newer token request (a token, a removal, a start with a token, a forget) supersedes the queued ones:
    /// token intents are dropped and queued starts keep everything but their token. Only the newest token is
    /// sent, and a token the device no longer claims is never sent by it. A start whose token ME already holds on
    /// this device's client (its PUT done, the start not yet finished) keeps it: it sends nothing more for it, and
    /// taking it out would make the start remove it first.
    public static func collapse(queued: [Intent], state: DeviceState?) -> QueueEdits {
        supersede(queued, tokenHash: nil, keeping: state?.pushTokenSent.map { [$0.tokenHash] } ?? [])
    }

    /// The token with hash `hash` leaves a device with `state` and `queued` (it moved to another device, or was
    /// reported dead): the edits of its queue, and the release intent to queue at its head. When the token was the
    /// device's newest requested one, the device is left with no token (`releaseAll`), and every token still queued
    /// goes with it: they are all older (a start kept the token ME holds, say, when a rotation overtook it);
    /// otherwise only that token goes, where ME holds it (`release`).
    public static func release(
        tokenHash hash: String, cause: ReleaseCause = .moved, state: DeviceState?, queued: [Intent]
    ) -> (edits: QueueEdits, release: IntentPayload) {
        // The whole queue, a failed head included: when the backend's newest request for this device was the token
        // that now moves away (its PUT refused for good, waiting for a retry), the device is left with no token, not
        // with the older one ME still holds.
        let view = IntakeView(exists: true, state: state, queued: queued, tokenHolder: nil)
        let newestGoes = newestToken(view, queued[...])?.tokenHash == hash
        let release: IntentPayload = newestGoes ? .releaseAll(tokenHash: hash, cause: cause) : .release(tokenHash: hash, cause: cause)
        return (supersede(queued, tokenHash: newestGoes ? nil : hash, keeping: []), release)
    }

    /// Drops the token intents (of the token `tokenHash`, or all) and takes the token out of the starts (but
    /// those whose token hash is in `kept`).
    static func supersede(_ queued: [Intent], tokenHash: String?, keeping kept: [String]) -> QueueEdits {
        var edits = QueueEdits()
        for intent in queued {
            switch intent.payload {
            case .setToken(let t) where tokenHash == nil || t.tokenHash == tokenHash:
                edits.dropIds.append(intent.id)
            case .removeToken where tokenHash == nil:
                edits.dropIds.append(intent.id)
            case .start(var s):
                guard let t = s.token, !kept.contains(t.tokenHash), tokenHash == nil || t.tokenHash == tokenHash else { continue }
                s.token = nil
                edits.rewrites.append(.init(id: intent.id, payload: .start(s)))
            default:
                continue
            }
        }
        return edits
    }

    /// The token hashes a device keeps its claims on whatever the backend asks next: the ones ME holds (or
    /// may hold) on its client. A claim on them goes only when another device takes the token, which then waits
    /// for this device's removal; so no device sends a token while ME still holds it on another client.
    public static func claimsKept(by state: DeviceState?) -> [String] {
        var kept: [String] = []
        for t in [state?.pushTokenSent, state?.pushTokenUncertain] {
            if let hash = t?.tokenHash, !kept.contains(hash) { kept.append(hash) }
        }
        return kept
    }
}

/// The registration columns the API keeps beside the engine's state: the newest request's provider, platform
/// and token hash.
public struct RegistrationColumns: Sendable, Hashable {
    public var provider: String?
    public var platform: String
    public var tokenHash: String?
    public init(provider: String?, platform: String, tokenHash: String?) {
        self.provider = provider
        self.platform = platform
        self.tokenHash = tokenHash
    }
}

extension Intake {
    /// The push token a write carries.
    public static func token(of write: DeviceWrite) -> TokenRef? {
        token(of: write.payload)
    }

    /// The push token a queued intent sets.
    public static func token(of payload: IntentPayload) -> TokenRef? {
        switch payload {
        case .setToken(let t): t
        case .start(let s): s.token
        default: nil
        }
    }

    /// The device a write creates (only a start or a token does): its first state and registration columns. The
    /// client id is the one the start names, else `generatedClientId`.
    public static func newDevice(for write: DeviceWrite, generatedClientId: String) -> (state: DeviceState, columns: RegistrationColumns)? {
        let columns: RegistrationColumns
        var clientId = generatedClientId
        switch write {
        case .start(let s):
            columns = RegistrationColumns(provider: s.token?.provider ?? s.provider, platform: s.token?.platform ?? s.platform, tokenHash: nil)
            if let given = s.clientId { clientId = given }
        case .setToken(let t):
            columns = RegistrationColumns(provider: t.provider, platform: t.platform, tokenHash: nil)
        default:
            return nil
        }
        return (DeviceState(clientId: clientId, platform: columns.platform), columns)
    }

    /// The registration columns after an accepted write: they follow the newest request.
    public static func registration(after write: DeviceWrite, from columns: RegistrationColumns) -> RegistrationColumns {
        var c = columns
        if let token = token(of: write) {
            (c.provider, c.platform, c.tokenHash) = (token.provider, token.platform, token.tokenHash)
        } else if case .start(let s) = write {
            (c.provider, c.platform) = (s.provider, s.platform)
        }
        switch write {
        case .removeToken, .forget: c.tokenHash = nil
        default: break
        }
        return c
    }
}
