import Foundation
import MobileEngage
import Storage
import Workflow

/// One decision of a device's turn: the write it makes, and whether the turn goes on after it.
public enum TurnStep: Sendable {
    /// Commit and read the device's work again in the same transaction: the turn goes on at once.
    case proceed(WorkUpdate)
    /// Commit and end the turn: the lease goes back in the same write, and `next` says when the device is due.
    case finish(WorkUpdate)

    public var update: WorkUpdate {
        switch self {
        case .proceed(let u), .finish(let u): u
        }
    }

    /// The same step, its commit telling `routing`'s endpoints of the state it enters.
    public func notifying(_ routing: WebhookRouting?) -> TurnStep {
        switch self {
        case .proceed(var u):
            u.notify = routing
            return .proceed(u)
        case .finish(var u):
            u.notify = routing
            return .finish(u)
        }
    }
}

/// When a device is worked next and what each step writes, decided in one place. Pure: the engine's worker
/// (`Engine.work(on:)`) only loads, sends and commits what these functions return.
public enum Turn {
    /// How long a device waiting for a token to leave another device sleeps before it looks again; the release's
    /// commit wakes it sooner (this is the safety net).
    public static let tokenMovePoll: TimeInterval = 2

    /// Why a step of `head` would leave the device without a token at ME (the reason of `device.unregistered`):
    /// the backend removed the token, the token moved to another device, was reported dead or expired (the cause is the
    /// reason's name), or a start came with
    /// another client id. Nil for any other intent: the store keeps the reason of the removal before it.
    public static func unregisterReason(head: Intent?, state: DeviceState) -> String? {
        switch head?.payload {
        case .release(_, let cause), .releaseAll(_, let cause):
            cause.rawValue
        case .removeToken:
            "removed"
        case .start(let start):
            start.clientId.map { $0 != state.clientId } == true ? "client-changed" : nil
        default:
            nil
        }
    }

    /// The write for a plan that sends nothing (`.send` gives nil: see `beforeSending` and `afterAnswer`).
    public static func afterPlan(_ plan: Plan, work: Work, owner: String, now: Date) -> TurnStep? {
        func update(_ state: DeviceState, headId: Int64?, pop: Bool = false, forget: Bool = false, next: WorkUpdate.Next, ends: Bool) -> WorkUpdate {
            WorkUpdate(
                state: state, headId: headId, popHead: pop, forget: forget, next: next,
                newestIntentIdSeen: work.newestIntentId, owner: owner, releaseLease: ends)
        }
        switch plan {
        case .send:
            return nil
        case .idle:
            return .finish(update(work.state, headId: nil, next: .whenWoken, ends: true))
        case .wait(let reason):
            var state = work.state
            switch reason {
            case .login:
                // Woken by the login's write.
                state.waitingFor = WaitReason.login.rawValue
                return .finish(update(state, headId: work.head?.id, next: .whenWoken, ends: true))
            case .tokenMove:
                return .finish(update(state, headId: work.head?.id, next: .at(now.addingTimeInterval(tokenMovePoll)), ends: true))
            }
        case .advance(let state, let pop):
            if pop && work.queue.count == 1 {
                // The last queued intent is done: the turn ends with this commit, as the `.idle` that would follow
                // it would end it (an intent queued meanwhile keeps the device due).
                return .finish(update(state, headId: work.head?.id, pop: true, next: .whenWoken, ends: true))
            }
            return .proceed(update(state, headId: work.head?.id, pop: pop, next: .now, ends: false))
        case .forget:
            // What the forget covers ends at its own intent: a write the backend sent after it (a start after a
            // DELETE) survives, and the device starts afresh with it, even when it was loaded with the forget.
            var forget = update(work.state, headId: work.head?.id, forget: true, next: .whenWoken, ends: true)
            forget.newestIntentIdSeen = work.head?.id ?? work.newestIntentId
            return .finish(forget)
        }
    }

    /// The write before `call` goes out, when it needs one (`Planner.beforeSending`: a PUT's token is recorded as
    /// possibly at ME first); the turn goes on and sends it after the commit.
    public static func beforeSending(_ call: MECall, work: Work, owner: String) -> TurnStep? {
        guard let head = work.head, let marked = Planner.beforeSending(call, state: work.state, head: head) else { return nil }
        return .proceed(WorkUpdate(state: marked, headId: head.id, next: .now, newestIntentIdSeen: work.newestIntentId, owner: owner))
    }

    /// When the device is due after an answer: at the retry time of a transient failure or after the pause a
    /// refresh asks for (the device is given back meanwhile: no worker waits), when woken if it failed, else now.
    public static func next(after t: Transition) -> WorkUpdate.Next {
        if let at = t.retryAt ?? t.notBefore { return .at(at) }
        return t.state.failed ? .whenWoken : .now
    }

    /// The write after ME answered. A turn that goes on marks the next call's PUT token in the same write
    /// (`Planner.markingNextPut`), so that the PUT needs no write of its own.
    public static func afterAnswer(
        _ t: Transition, work: Work, head: Intent, owner: String, planner: Planner, appCode: String, nowMs: Int64
    ) -> TurnStep {
        let next = next(after: t)
        var update = WorkUpdate(
            state: t.state, headId: head.id, headProgress: t.headProgress, next: next,
            newestIntentIdSeen: work.newestIntentId, owner: owner)
        guard next == .now else {
            update.releaseLease = true
            return .finish(update)
        }
        var queue = work.queue
        if let progress = t.headProgress { queue[0].progress = progress }
        update.state = planner.markingNextPut(t.state, queue: queue, appCode: appCode, moveBlocked: work.moveBlocked, nowMs: nowMs)
        return .proceed(update)
    }
}
