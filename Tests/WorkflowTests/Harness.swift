import Foundation
import MobileEngage
@testable import Workflow

/// Drives the pure planner and reducer against scripted ME answers, the way the engine does,
/// and records every call. No clock, no network: each test runs in microseconds.
struct Harness {
    var state: DeviceState
    var queue: [Intent] = []
    var policy = AppPolicy()
    var retry = RetryPolicy(initialDelayMs: 500, maxDelayMs: 300_000)
    var nowMs: Int64 = 1_700_000_000_000
    var calls: [MECall] = []
    var contexts: [MERequestContext] = []
    var transitions: [Transition] = []
    var lastPlan: Plan?
    var forgotten = false
    private var nextId: Int64 = 1
    private var tokenCounter = 0

    init(clientId: String = "client-1", platform: String = "android") {
        state = DeviceState(clientId: clientId, platform: platform)
    }

    mutating func enqueue(_ payload: IntentPayload) {
        queue.append(Intent(id: nextId, payload: payload, acceptedAt: Date(timeIntervalSince1970: Double(nowMs) / 1000)))
        queue.sort { ($0.payload.priority, $0.id) < ($1.payload.priority, $1.id) }
        nextId += 1
    }

    /// Plans and answers until the device is idle, waits, or `maxSteps` calls were made.
    /// `answer` gives ME's answer to each call; the default answers every call with success.
    @discardableResult
    mutating func run(maxSteps: Int = 50, moveBlocked: Bool = false, answer: (MECall, Int) -> MEAnswer = { call, _ in .ok(call) }) -> Plan {
        for _ in 0..<(maxSteps * 4) {
            let plan = Planner(policy: policy, sdkVersion: "test").plan(state: state, queue: queue, appCode: "EMS12-34567", moveBlocked: moveBlocked, nowMs: nowMs)
            lastPlan = plan
            switch plan {
            case .idle, .wait:
                return plan
            case .forget:
                forgotten = true
                queue.removeAll()
                return plan
            case .advance(let s, let pop):
                state = s
                if pop { queue.removeFirst() }
            case .send(let call, let context):
                calls.append(call)
                contexts.append(context)
                let t = Reducer(retry: retry).apply(
                    state: state, head: queue[0], call: call, context: context, answer: answer(call, calls.count - 1),
                    now: Date(timeIntervalSince1970: Double(nowMs) / 1000), jitter: 0.5)
                transitions.append(t)
                state = t.state
                if let p = t.headProgress { queue[0].progress = p }
                nowMs += 1
                if let pause = t.notBefore { nowMs = max(nowMs, Int64(pause.timeIntervalSince1970 * 1000)) }
                if t.retryAt != nil || t.state.failed || calls.count >= maxSteps { return plan }
            }
        }
        return lastPlan ?? .idle
    }

    var endpoints: [String] { calls.map(\.endpoint) }
}

extension MEAnswer {
    /// Success with fresh contact tokens for contact calls, and a new client state every time.
    static func ok(_ call: MECall) -> MEAnswer {
        switch call {
        case .linkAnonymousContact, .linkContact, .linkOpenIdContact:
            return MEAnswer(outcome: .success(contactToken: "ct-\(UUID().uuidString)", refreshToken: "rt-\(UUID().uuidString)"), clientState: "cs-\(UUID().uuidString)")
        case .refreshContactToken:
            return MEAnswer(outcome: .success(contactToken: "ct-\(UUID().uuidString)", refreshToken: nil), clientState: "cs-\(UUID().uuidString)")
        default:
            return MEAnswer(outcome: .success(contactToken: nil, refreshToken: nil), clientState: "cs-\(UUID().uuidString)")
        }
    }

    static func status(_ code: Int, retryAfter: Double? = nil) -> MEAnswer {
        MEAnswer(outcome: .http(status: code, retryAfterSeconds: retryAfter, message: "ME answered \(code)"), clientState: nil)
    }

    static let network = MEAnswer(outcome: .network(message: "connection refused"), clientState: nil)
}

func token(_ n: Int, provider: String = "fcm", platform: String = "android") -> TokenRef {
    TokenRef(provider: provider, platform: platform, pushToken: "token-\(n)", tokenHash: String(repeating: String(n % 10), count: 64))
}

func start(token t: TokenRef? = token(1), contact: ContactRequest? = nil, clientId: String? = nil, info: DeviceInfo = DeviceInfo()) -> IntentPayload {
    .start(StartIntent(provider: t?.provider ?? "fcm", platform: t?.platform ?? "android", token: t, info: info, contact: contact, clientId: clientId))
}

/// A harness whose device finished a start with token 1 and is registered.
func registeredDevice(policy: AppPolicy = AppPolicy()) -> Harness {
    var h = Harness()
    h.policy = policy
    h.enqueue(start())
    h.run()
    h.calls.removeAll()
    h.contexts.removeAll()
    h.transitions.removeAll()
    return h
}
