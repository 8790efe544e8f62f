import Foundation
import MobileEngage

/// The state after an ME answer. Pure: the clock and the jitter are passed in.
public struct Transition: Sendable, Hashable {
    public var state: DeviceState
    /// New progress bits for the head intent, when they changed.
    public var headProgress: Int?
    /// Set when the step failed transiently: the device's next attempt.
    public var retryAt: Date?
    /// Set when the next step must not go before this time although nothing failed: the pause between a
    /// contact-token refresh and the replay, as the SDKs make it.
    public var notBefore: Date? = nil
    /// How the call ended (the metrics' `outcome` label and the step's log line).
    public var outcome: StepOutcome
}

/// How one ME call ended, for the workflow.
public enum StepOutcome: String, Sendable, Hashable {
    case success
    /// A retry later (408, 429, 5xx, no answer).
    case transient
    /// Failed for good (or skipped, for an event).
    case permanent
    /// A 401 that the next steps answer with a refresh or a re-link.
    case unauthorized
}

public struct Reducer: Sendable {
    public var retry: RetryPolicy
    /// The pause between a successful contact-token refresh and the replay of the call that got the 401: both
    /// SDKs wait 500 ms (Android `CoreCompletionHandlerRefreshTokenProxy`, iOS `EMSMobileEngageRefreshTokenCompletionProxy`).
    public var refreshReplayDelayMs: Int

    public init(retry: RetryPolicy, refreshReplayDelayMs: Int = 500) {
        self.retry = retry
        self.refreshReplayDelayMs = max(0, refreshReplayDelayMs)
    }

    /// Applies ME's `answer` to `call`, which `Planner.plan` chose for `state` and `head` with `context`.
    public func apply(
        state: DeviceState, head: Intent, call: MECall, context: MERequestContext,
        answer: MEAnswer, now: Date, jitter: Double
    ) -> Transition {
        var s = state
        s.lastRequestOrder = max(s.lastRequestOrder, context.requestOrder)
        if let clientState = answer.clientState { s.clientState = clientState }
        let desired = Desired(state: state, head: head.payload)

        switch answer.outcome {
        case .success(let contactToken, let refreshToken):
            if case .events = call, let eventState = answer.deviceEventState { s.deviceEventState = eventState }
            return success(s, head: head, call: call, desired: desired, contactToken: contactToken, refreshToken: refreshToken, now: now)
        case .http(let status, let retryAfter, let message):
            if status == 401 {
                return unauthorized(s, head: head, call: call, sentContactToken: context.contactToken != nil, message: message, now: now, jitter: jitter)
            }
            if status == 408 || status == 429 || (500...599).contains(status) {
                return transient(s, call: call, status: status, message: message, retryAfter: retryAfter, now: now, jitter: jitter)
            }
            if case .refreshContactToken = call {
                return refreshFailed(s, head: head, call: call, status: status, message: message, now: now)
            }
            return permanent(s, head: head, call: call, status: status, message: message, now: now)
        case .network(let message):
            // No answer: ME may have stored the token. Until a later PUT or DELETE is acknowledged, a move or
            // a removal treats it as held.
            if case .setPushToken = call, let token = desired.token, token != s.pushTokenSent { s.pushTokenUncertain = token }
            return transient(s, call: call, status: nil, message: message, retryAfter: nil, now: now, jitter: jitter)
        }
    }

    private func success(
        _ state: DeviceState, head: Intent, call: MECall, desired: Desired,
        contactToken: String?, refreshToken: String?, now: Date
    ) -> Transition {
        var s = state
        var progress: Int?
        s.attempts = 0
        s.lastError = nil
        s.failed = false
        s.waitingFor = nil
        switch call {
        case .setClient(let body):
            s.deviceInfoHashSent = DeviceInfoHash.of(body)
            s.steps.clientAt = now
        case .linkAnonymousContact, .linkContact, .linkOpenIdContact:
            s.contactToken = contactToken
            let linked: ContactRequest
            switch call {
            case .linkContact(let fieldId, let value): linked = .identified(fieldId: fieldId, value: value)
            case .linkOpenIdContact(let fieldId, let token): linked = .openId(fieldId: fieldId, token: token)
            default: linked = .anonymous
            }
            // As the SDKs, an answer without a refresh token keeps the stored one, but only for a re-link of the
            // same contact: another contact's refresh token could bring back the old contact's token (and put the
            // push token under the user who logged out). Without one, the next 401 re-links.
            if let refreshToken {
                s.refreshToken = refreshToken
            } else if s.linkedContact != linked {
                s.refreshToken = nil
            }
            s.linkedContact = linked
            if case .openIdLogin = head.payload { progress = head.progress | IntentProgress.contactLinked }
            // As the SDKs do: a new contact gets the current token again.
            s.resendPushToken = s.pushTokenSent != nil
            s.needsRefresh = false
            s.steps.contactAt = now
        case .refreshContactToken:
            s.contactToken = contactToken
            if let refreshToken { s.refreshToken = refreshToken }
            s.needsRefresh = false
        case .events:
            progress = head.progress | IntentProgress.eventsDone
        case .setPushToken:
            s.pushTokenSent = desired.token
            s.pushTokenUncertain = nil
            s.resendPushToken = false
            s.steps.pushTokenAt = now
        case .removePushToken:
            s.pushTokenSent = nil
            s.pushTokenUncertain = nil
            s.resendPushToken = false
            s.steps.pushTokenAt = now
        }
        var notBefore: Date?
        switch call {
        case .refreshContactToken:
            // The replayed step has not succeeded yet: keep counting its refresh cycles. The replay waits as the
            // SDKs' does; the engine gives the device back meanwhile (no worker waits).
            if refreshReplayDelayMs > 0 { notBefore = now.addingTimeInterval(Double(refreshReplayDelayMs) / 1000) }
        case .linkAnonymousContact, .linkContact, .linkOpenIdContact:
            break  // the replayed step has not succeeded yet: keep counting its refresh cycles
        default:
            s.refreshCycles = 0
            s.relinked = false
        }
        return Transition(state: s, headProgress: progress, retryAt: nil, notBefore: notBefore, outcome: .success)
    }

    /// 401: refresh the contact token (3 cycles at most), then re-link once, then give up on the step.
    ///
    /// `POST /client` and the anonymous link carry a stored contact token, as the SDKs send it there: a 401 on
    /// them then may mean it expired, and is answered as on the calls that need one (refresh, re-link). Without a
    /// token, and on the identified links (which never carry one), a 401 is permanent, by contract.
    private func unauthorized(
        _ state: DeviceState, head: Intent, call: MECall, sentContactToken: Bool, message: String, now: Date, jitter: Double
    ) -> Transition {
        var s = state
        switch call {
        case .setClient where !sentContactToken, .linkAnonymousContact where !sentContactToken, .linkContact, .linkOpenIdContact:
            return permanent(s, head: head, call: call, status: 401, message: message, now: now)
        case .refreshContactToken:
            return refreshFailed(s, head: head, call: call, status: 401, message: message, now: now)
        case .setClient, .linkAnonymousContact, .setPushToken, .removePushToken, .events:
            s.resendPushToken = true
            s.lastError = LastError(step: call.step, status: 401, message: message, attempts: s.attempts + 1, at: now, nextAttemptAt: nil)
            if s.relinked {
                if case .removePushToken = call {
                    // A removal never gives up on a 401: ME would keep the token while another device may take it
                    // (I1). It backs off and starts over with a fresh budget.
                    return transient(s, call: call, status: 401, message: "\(message) (after a contact refresh and a re-link)", retryAfter: nil, now: now, jitter: jitter)
                }
                return permanent(s, head: head, call: call, status: 401, message: "\(message) (after a contact refresh and a re-link)", now: now)
            }
            if s.refreshCycles < 3 {
                s.refreshCycles += 1
                s.needsRefresh = true
            } else {
                s.relinked = true
                s.contactToken = nil
                s.needsRefresh = false
            }
            return Transition(state: s, headProgress: nil, retryAt: nil, outcome: .unauthorized)
        }
    }

    /// The refresh token is dead (the SDKs get stuck here): re-link the contact once and replay.
    private func refreshFailed(_ state: DeviceState, head: Intent, call: MECall, status: Int, message: String, now: Date) -> Transition {
        var s = state
        s.needsRefresh = false
        if s.relinked {
            // Refreshed, re-linked, and the new refresh token is refused too: the operator must look.
            s.attempts += 1
            s.failed = true
            s.lastError = LastError(step: call.step, status: status, message: message, attempts: s.attempts, at: now, nextAttemptAt: nil)
            return Transition(state: s, headProgress: nil, retryAt: nil, outcome: .permanent)
        }
        s.relinked = true
        s.contactToken = nil
        s.refreshToken = nil
        s.lastError = LastError(step: call.step, status: status, message: message, attempts: s.attempts + 1, at: now, nextAttemptAt: nil)
        return Transition(state: s, headProgress: nil, retryAt: nil, outcome: .unauthorized)
    }

    private func transient(
        _ state: DeviceState, call: MECall, status: Int?, message: String, retryAfter: Double?, now: Date, jitter: Double
    ) -> Transition {
        var s = state
        s.attempts += 1
        s.failed = false
        if call.needsContactToken {
            // ME answered something other than 401 since the last refresh or re-link: a 401 after this is a new
            // expiry, not the same one, and gets the whole budget again (a removal that gave up on it would leave
            // the token at ME while another device takes it).
            s.refreshCycles = 0
            s.relinked = false
        }
        let delay = retry.delay(afterFailures: s.attempts, jitter: jitter, retryAfterSeconds: retryAfter)
        let at = now.addingTimeInterval(delay)
        s.lastError = LastError(step: call.step, status: status, message: message, attempts: s.attempts, at: now, nextAttemptAt: at)
        return Transition(state: s, headProgress: nil, retryAt: at, outcome: .transient)
    }

    private func permanent(_ state: DeviceState, head: Intent, call: MECall, status: Int, message: String, now: Date) -> Transition {
        var s = state
        s.attempts += 1
        s.lastError = LastError(step: call.step, status: status, message: message, attempts: s.attempts, at: now, nextAttemptAt: nil)
        switch call {
        case .events:
            // A permanent failure of an event is recorded and skipped; the steps behind it go on, each with a
            // fresh refresh budget (I4).
            s.attempts = 0
            s.refreshCycles = 0
            s.relinked = false
            s.needsRefresh = false
            return Transition(state: s, headProgress: head.progress | IntentProgress.eventsDone, retryAt: nil, outcome: .permanent)
        case .removePushToken:
            // Nothing more can be done for a removal ME refuses: consider the token gone so the
            // device that waits for it (a token move) can go on.
            s.attempts = 0
            s.refreshCycles = 0
            s.relinked = false
            s.needsRefresh = false
            s.pushTokenSent = nil
            s.pushTokenUncertain = nil
            s.resendPushToken = false
            return Transition(state: s, headProgress: nil, retryAt: nil, outcome: .permanent)
        case .refreshContactToken:
            return refreshFailed(state, head: head, call: call, status: status, message: message, now: now)
        case .setClient, .linkAnonymousContact, .linkContact, .linkOpenIdContact, .setPushToken:
            s.failed = true
            s.needsRefresh = false
            s.refreshCycles = 0
            s.relinked = false
            return Transition(state: s, headProgress: nil, retryAt: nil, outcome: .permanent)
        }
    }
}
