import Foundation
import MobileEngage

/// What to do next for a device. Pure: the state, the head intent and the clock go in; a decision comes out.
public enum Plan: Sendable, Hashable {
    /// Send this ME call with this context, then feed the answer to `Reducer.apply`.
    case send(MECall, MERequestContext)
    /// A change with no ME call (the head intent is complete, a client id is reset, ...). Persist and plan again.
    case advance(DeviceState, popHead: Bool)
    /// The head intent was a `forget` and the token is gone at ME: delete the device.
    case forget
    /// Nothing can go until something outside this device changes.
    case wait(WaitReason)
    /// Nothing queued.
    case idle
}

public enum WaitReason: String, Sendable, Hashable {
    /// `anonymousContacts: false` and no login yet.
    case login
    /// The token is being removed from the device that held it before.
    case tokenMove = "token-move"
}

public struct Planner: Sendable {
    public var policy: AppPolicy
    public var sdkVersion: String

    public init(policy: AppPolicy, sdkVersion: String) {
        self.policy = policy
        self.sdkVersion = sdkVersion
    }

    /// The next step for `state` with `queue` (processing order; the head first).
    /// - Parameters:
    ///   - moveBlocked: the head's token is still being removed from another device.
    ///   - nowMs: the clock, in epoch milliseconds, for `X-Request-Order`.
    public func plan(state: DeviceState, queue: [Intent], appCode: String, moveBlocked: Bool, nowMs: Int64) -> Plan {
        guard let head = queue.first else { return .idle }
        let desired = Desired(state: state, head: head.payload)
        let eventsVersion = policy.eventsAPIVersion(platform: desired.platform)
        func send(_ call: MECall, clientId: String? = nil) -> Plan {
            let context = MERequestContext(
                appCode: appCode,
                clientId: clientId ?? state.clientId,
                clientState: state.clientState,
                contactToken: state.contactToken,
                requestOrder: max(nowMs, state.lastRequestOrder + 1),
                codePath: policy.codePath,
                eventsAPIVersion: eventsVersion
            )
            return .send(call, context)
        }

        // A new intent woke a failed device: its failed step starts again with a fresh budget (attempts,
        // refresh cycles and the one re-link), as the contract's I4 says.
        if state.failed {
            var fresh = state
            fresh.failed = false
            fresh.attempts = 0
            fresh.refreshCycles = 0
            fresh.relinked = false
            fresh.needsRefresh = false
            return .advance(fresh, popHead: false)
        }

        // A 401 asked for a fresh contact token; without a refresh token, re-link instead. This comes before
        // every path that sends a contact-token call (removal for a move or a client-id change included).
        if state.needsRefresh {
            if let refreshToken = state.refreshToken { return send(.refreshContactToken(refreshToken: refreshToken)) }
            var relink = state
            relink.needsRefresh = false
            relink.contactToken = nil
            return .advance(relink, popHead: false)
        }

        /// A removal of what this client holds at ME: it needs a contact token, so a device whose contact
        /// token was dropped (a failed refresh) re-links the contact it knows first.
        func removal() -> Plan {
            if state.contactToken == nil { return send(Self.relinkCall(state: state)) }
            return send(.removePushToken)
        }

        // A token that moved to another device leaves this one first: another device waits for it.
        switch head.payload {
        case .release(let hash, _) where state.holdsAtME(tokenHash: hash):
            return removal()
        case .releaseAll where state.pushTokenSent != nil || state.pushTokenUncertain != nil:
            return removal()
        case .release, .releaseAll:
            var done = desired.applied(to: state)
            done.resendPushToken = false
            return .advance(done, popHead: true)
        default:
            break
        }

        // A forget needs ME only for what it holds there: the token goes, then the device. Nothing else is sent (no
        // device properties, no contact link), so a device ME never took, or refused, is forgotten at once.
        if case .forget = head.payload {
            if state.pushTokenSent != nil || state.pushTokenUncertain != nil { return removal() }
            return .forget
        }

        // A start with another client id: remove the old client's token, then start over under the new id.
        if let newId = desired.clientId, newId != state.clientId {
            if state.pushTokenSent != nil || state.pushTokenUncertain != nil { return removal() }
            return .advance(state.resetForNewClient(newId), popHead: false)
        }

        // 1. Device properties, when they changed or no client state is stored.
        let body = desired.info.body(platform: desired.platform, sdkVersion: sdkVersion)
        if state.clientState == nil || state.deviceInfoHashSent != DeviceInfoHash.of(body) {
            return send(.setClient(body))
        }

        // 2. The contact link.
        if let contact = desired.contact {
            if state.contactToken == nil || state.linkedContact != contact { return send(contact.linkCall) }
            if case .openIdLogin = head.payload, head.progress & IntentProgress.contactLinked == 0 { return send(contact.linkCall) }
        } else if state.contactToken == nil {
            if policy.anonymousContacts { return send(.linkAnonymousContact) }
            // No anonymous contacts: a login queued behind this intent is linked now, or the device waits for one.
            guard let login = Self.queuedLogin(queue) else { return .wait(.login) }
            return send(login.linkCall)
        }

        // 3. Events: the start event of a start, or the custom events. On v4 they echo the `deviceEventState` of
        // ME's last events answer, as the SDKs do.
        if head.progress & IntentProgress.eventsDone == 0 {
            let eventState = eventsVersion == .v4 ? state.deviceEventState : nil
            switch head.payload {
            case .start:
                if let name = policy.startEvent {
                    let event = MEEvent(type: .internal, name: name, timestamp: MEWireFormat.timestamp(head.acceptedAt))
                    return send(.events([event], deviceEventState: eventState))
                }
            case .events(let events):
                let wire = events.map {
                    MEEvent(type: .custom, name: $0.name, timestamp: $0.timestamp, attributes: $0.attributes, sessionId: $0.sessionId)
                }
                if !wire.isEmpty { return send(.events(wire, deviceEventState: eventState)) }
            default:
                break
            }
        }

        // 4. The push token, when it differs from what ME holds (or must be re-sent).
        if let token = desired.token {
            if state.pushTokenSent?.pushToken != token.pushToken || state.resendPushToken {
                if moveBlocked { return .wait(.tokenMove) }
                return send(.setPushToken(token.pushToken))
            }
        } else if head.payload.removesToken ? (state.pushTokenSent != nil || state.pushTokenUncertain != nil)
            : (state.pushTokenSent != nil && !queue.dropFirst().contains { Intake.token(of: $0.payload) != nil }) {
            // A removal or a forget removes what ME holds or may hold. A start whose token a newer request took
            // out removes only a token ME holds, and not when a newer token is queued: its PUT replaces it (the
            // device keeps its claim on the token until then).
            return send(.removePushToken)
        }

        var done = desired.applied(to: state)
        done.waitingFor = nil
        return .advance(done, popHead: true)
    }

    /// The state to commit before `call` goes out, or nil when none is needed: a push-token `PUT` first records
    /// its token as possibly at ME (`pushTokenUncertain`), so that a crash before the answer is committed cannot
    /// leave ME holding a token the bridge does not know of (a later move or client-id change removes it).
    public static func beforeSending(_ call: MECall, state: DeviceState, head: Intent) -> DeviceState? {
        guard case .setPushToken = call, let token = Desired(state: state, head: head.payload).token,
            state.pushTokenSent != token, state.pushTokenUncertain != token
        else { return nil }
        var marked = state
        marked.pushTokenUncertain = token
        return marked
    }

    /// `state` as a step commits it, with the token of the device's next call already marked when that call will
    /// be a push-token `PUT` (what `beforeSending` would mark), so that the PUT after it needs no write of its own.
    /// Marking early is safe: an uncertain token that ME never got costs at most a needless `DELETE`.
    public func markingNextPut(_ state: DeviceState, queue: [Intent], appCode: String, moveBlocked: Bool, nowMs: Int64) -> DeviceState {
        // Most steps have no PUT to come: their head's token is at ME already, or there is none. Only the others
        // are planned ahead (the plan hashes the device info: not free on every step).
        guard let head = queue.first, let token = Desired(state: state, head: head.payload).token,
            token != state.pushTokenSent, token != state.pushTokenUncertain,
            case .send(let call, _) = plan(state: state, queue: queue, appCode: appCode, moveBlocked: moveBlocked, nowMs: nowMs)
        else { return state }
        return Self.beforeSending(call, state: state, head: head) ?? state
    }

    /// The link that gives a client whose contact token was dropped a new one: the contact it is linked to
    /// (anonymous when it knows none).
    static func relinkCall(state: DeviceState) -> MECall {
        (state.linkedContact ?? state.wantedContact)?.linkCall ?? .linkAnonymousContact
    }

    /// The first identified contact the queue asks for.
    static func queuedLogin(_ queue: [Intent]) -> ContactRequest? {
        queue.lazy.compactMap(\.payload.requestedContact).first { $0 != .anonymous }
    }
}
