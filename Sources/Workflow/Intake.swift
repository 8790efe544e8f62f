import Foundation

/// A write the public API accepted as valid, before deduplication.
public enum DeviceWrite: Sendable, Hashable {
    case start(StartIntent)
    case setToken(TokenRef)
    case removeToken
    case login(fieldId: Int, value: String)
    case logout
    case events([CustomEvent])
    case forget

    public var payload: IntentPayload {
        switch self {
        case .start(let s): .start(s)
        case .setToken(let t): .setToken(t)
        case .removeToken: .removeToken
        case .login(let f, let v): .login(fieldId: f, value: v)
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
    /// Queue `payload`. `collapse`: drop this device's queued token intents first (only the newest token
    /// is sent). `takeTokenFrom`: the token moves from that device (queue a release there first).
    case enqueue(IntentPayload, collapse: Bool, takeTokenFrom: DeviceKey?)
}

public enum Intake {
    public static func decide(_ write: DeviceWrite, view: IntakeView, policy: AppPolicy) -> IntakeDecision {
        switch write {
        case .start(let start):
            return .enqueue(write.payload, collapse: false, takeTokenFrom: start.token == nil ? nil : view.tokenHolder)
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
        let live = liveQueue(view)
        switch write {
        case .setToken(let token):
            if newestToken(view, live)?.pushToken == token.pushToken { return .deduplicated }
            return .enqueue(write.payload, collapse: true, takeTokenFrom: view.tokenHolder)
        case .removeToken:
            if newestToken(view, live) == nil { return .deduplicated }
            return .enqueue(.removeToken, collapse: true, takeTokenFrom: nil)
        case .login(let fieldId, let value):
            if newestContact(view, live, policy: policy) == .identified(fieldId: fieldId, value: value) { return .deduplicated }
            return .enqueue(write.payload, collapse: false, takeTokenFrom: nil)
        case .logout:
            if newestContact(view, live, policy: policy) == .anonymous { return .deduplicated }
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

    /// The newest token of the device that is queued or was accepted by ME.
    static func newestToken(_ view: IntakeView, _ live: ArraySlice<Intent>) -> TokenRef? {
        for intent in live.reversed() {
            switch intent.payload {
            case .setToken(let t): return t
            case .start(let s) where s.token != nil: return s.token
            case .removeToken, .forget: return nil
            case .release(let hash) where view.state?.pushTokenSent?.tokenHash == hash: return nil
            default: continue
            }
        }
        return view.state?.pushTokenSent
    }

    /// The newest contact of the device that is queued or linked; a device never linked counts as
    /// anonymous when the app links anonymous contacts.
    static func newestContact(_ view: IntakeView, _ live: ArraySlice<Intent>, policy: AppPolicy) -> ContactRequest? {
        for intent in live.reversed() {
            switch intent.payload {
            case .login(let f, let v): return .identified(fieldId: f, value: v)
            case .logout: return .anonymous
            case .start(let s) where s.contact != nil: return s.contact
            default: continue
            }
        }
        if let linked = view.state?.linkedContact { return linked }
        return policy.anonymousContacts ? .anonymous : nil
    }
}
