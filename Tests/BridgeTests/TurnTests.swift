import ConcurrencySupport
import Foundation
import MobileEngage
import Storage
import Testing
@testable import Workflow
@testable import Bridge

/// The engine's turn as pure decisions: what each step writes, when the device is due next, and when the lease goes
/// back. The worker around them (`Engine.work(on:)`) only loads, sends and commits.
@Suite("The engine's turn")
struct TurnTests {
    static let owner = "instance-1"
    static let now = Date(timeIntervalSince1970: 1_764_410_400)
    static let token = TokenRef(provider: "fcm", platform: "android", pushToken: "token-1", tokenHash: "hash-1")

    static func intent(_ id: Int64, _ payload: IntentPayload) -> Intent {
        Intent(id: id, payload: payload, acceptedAt: now)
    }

    static func work(_ queue: [Intent], state: DeviceState = DeviceState(clientId: "c1", platform: "android"), moveBlocked: Bool = false) -> Work {
        Work(state: state, queue: queue, moveBlocked: moveBlocked, newestIntentId: queue.map(\.id).max() ?? 0)
    }

    static func transition(_ state: DeviceState, retryAt: Date? = nil, notBefore: Date? = nil, progress: Int? = nil) -> Transition {
        Transition(state: state, headProgress: progress, retryAt: retryAt, notBefore: notBefore, outcome: .success)
    }

    static let planner = Planner(policy: AppPolicy(), sdkVersion: "test")

    @Test("nothing queued: the turn ends, the lease goes back in the same write, due when woken")
    func idle() throws {
        let step = try #require(Turn.afterPlan(.idle, work: Self.work([]), owner: Self.owner, now: Self.now))
        guard case .finish(let u) = step else { Issue.record("idle must end the turn"); return }
        #expect(u.releaseLease && u.next == .whenWoken && u.headId == nil && u.owner == Self.owner)
    }

    @Test("waiting for a login sleeps until woken and says so; waiting for a token move polls as a safety net")
    func waits() throws {
        let w = Self.work([Self.intent(1, .setToken(Self.token))])
        let login = try #require(Turn.afterPlan(.wait(.login), work: w, owner: Self.owner, now: Self.now))
        guard case .finish(let u) = login else { Issue.record("a wait ends the turn"); return }
        #expect(u.next == .whenWoken && u.releaseLease && u.state.waitingFor == "login" && u.headId == 1)
        let move = try #require(Turn.afterPlan(.wait(.tokenMove), work: w, owner: Self.owner, now: Self.now))
        guard case .finish(let m) = move else { Issue.record("a wait ends the turn"); return }
        #expect(m.next == .at(Self.now.addingTimeInterval(Turn.tokenMovePoll)) && m.releaseLease && m.state.waitingFor == nil)
    }

    @Test("an intent done without a call: the last one ends the turn in its pop; with more queued the turn goes on")
    func advance() throws {
        let state = DeviceState(clientId: "c1", platform: "android")
        let last = try #require(Turn.afterPlan(.advance(state, popHead: true), work: Self.work([Self.intent(7, .logout)]), owner: Self.owner, now: Self.now))
        guard case .finish(let u) = last else { Issue.record("the last pop ends the turn"); return }
        #expect(u.popHead && u.releaseLease && u.next == .whenWoken && u.headId == 7)
        // A collapsed or released intent with others behind it: pop and go on, lease kept.
        let more = try #require(Turn.afterPlan(
            .advance(state, popHead: true), work: Self.work([Self.intent(7, .release(tokenHash: "h")), Self.intent(8, .logout)]),
            owner: Self.owner, now: Self.now))
        guard case .proceed(let p) = more else { Issue.record("more queued: the turn goes on"); return }
        #expect(p.popHead && !p.releaseLease && p.next == .now && p.headId == 7)
        // A state change with no pop (a failed device's fresh budget) goes on too.
        let reset = try #require(Turn.afterPlan(.advance(state, popHead: false), work: Self.work([Self.intent(9, .logout)]), owner: Self.owner, now: Self.now))
        guard case .proceed(let r) = reset else { Issue.record("no pop: the turn goes on"); return }
        #expect(!r.popHead && r.next == .now)
    }

    @Test("a forget ends the turn with the device deleted")
    func forget() throws {
        let step = try #require(Turn.afterPlan(.forget, work: Self.work([Self.intent(3, .forget)]), owner: Self.owner, now: Self.now))
        guard case .finish(let u) = step else { Issue.record("forget ends the turn"); return }
        #expect(u.forget && u.releaseLease && u.headId == 3)
        #expect(Turn.afterPlan(.send(.removePushToken, MERequestContext(appCode: "A", clientId: "c1", clientState: nil, contactToken: nil, requestOrder: 1)),
                               work: Self.work([Self.intent(3, .forget)]), owner: Self.owner, now: Self.now) == nil)
    }

    @Test("retry timing: a transient failure gives the device back until its retry time; a refresh's pause too; failed waits to be woken")
    func retryTiming() {
        let w = Self.work([Self.intent(1, .setToken(Self.token))])
        let head = w.queue[0]
        var state = w.state
        let retry = Self.now.addingTimeInterval(3)
        let transient = Turn.afterAnswer(Self.transition(state, retryAt: retry), work: w, head: head, owner: Self.owner, planner: Self.planner, appCode: "A", nowMs: 0)
        guard case .finish(let t) = transient else { Issue.record("a retry ends the turn"); return }
        #expect(t.next == .at(retry) && t.releaseLease)
        let pause = Self.now.addingTimeInterval(0.5)
        let refreshed = Turn.afterAnswer(Self.transition(state, notBefore: pause), work: w, head: head, owner: Self.owner, planner: Self.planner, appCode: "A", nowMs: 0)
        guard case .finish(let r) = refreshed else { Issue.record("the replay pause ends the turn: no worker waits"); return }
        #expect(r.next == .at(pause) && r.releaseLease)
        state.failed = true
        let failed = Turn.afterAnswer(Self.transition(state), work: w, head: head, owner: Self.owner, planner: Self.planner, appCode: "A", nowMs: 0)
        guard case .finish(let f) = failed else { Issue.record("a failed device ends the turn"); return }
        #expect(f.next == .whenWoken && f.releaseLease)
    }

    @Test("a success goes on at once, with the head's progress and the next PUT's token marked in the same write")
    func successGoesOn() {
        // The start event is done; the PUT of the start's token comes next.
        var state = DeviceState(clientId: "c1", platform: "android")
        state.clientState = "cs"
        state.contactToken = "ct"
        state.linkedContact = .anonymous
        let start = StartIntent(provider: "fcm", platform: "android", token: Self.token, info: DeviceInfo(), contact: nil, clientId: nil)
        state.deviceInfoHashSent = DeviceInfoHash.of(DeviceInfo().body(platform: "android", sdkVersion: "test"))
        let w = Self.work([Self.intent(5, .start(start))], state: state)
        let step = Turn.afterAnswer(
            Self.transition(state, progress: IntentProgress.eventsDone), work: w, head: w.queue[0], owner: Self.owner,
            planner: Self.planner, appCode: "A", nowMs: 1)
        guard case .proceed(let u) = step else { Issue.record("a success goes on"); return }
        #expect(u.next == .now && !u.releaseLease && u.headProgress == IntentProgress.eventsDone)
        #expect(u.state.pushTokenUncertain == Self.token, "the PUT that follows needs no write of its own")
    }

    @Test("a PUT whose token is not yet marked is preceded by a write that marks it; the turn goes on to send it")
    func beforeSending() throws {
        let w = Self.work([Self.intent(2, .setToken(Self.token))])
        let step = try #require(Turn.beforeSending(.setPushToken("token-1"), work: w, owner: Self.owner))
        guard case .proceed(let u) = step else { Issue.record("the mark goes on to the send"); return }
        #expect(u.state.pushTokenUncertain == Self.token && u.next == .now && u.headId == 2)
        var marked = w
        marked.state.pushTokenUncertain = Self.token
        #expect(Turn.beforeSending(.setPushToken("token-1"), work: marked, owner: Self.owner) == nil)
        #expect(Turn.beforeSending(.removePushToken, work: w, owner: Self.owner) == nil)
    }
}

@Suite("The engine's wake-up signal")
struct SignalTests {
    /// Whether `body` finished before a generous deadline (a minute): a wait that only its own hour-long timeout
    /// could end means the notify was lost. No speed is measured.
    static func finishes(_ body: @escaping @Sendable () async -> Void) async -> Bool {
        let done = OneShot<Bool>()
        // Unstructured, so that a wait that never ends cannot hold the test: the deadline answers first.
        Task { await body(); done.succeed(true) }
        Task { try? await Task.sleep(for: .seconds(60)); done.succeed(false) }
        return (try? await done.value()) ?? false
    }

    @Test("a notify before the wait is kept, and a notify wakes a waiter; neither waits for the timeout")
    func notify() async {
        let signal = Signal()
        signal.notify()
        #expect(await Self.finishes { await signal.wait(timeout: .seconds(3600)) }, "the remembered notify ends the wait")
        let woken = await Self.finishes {
            async let waited: Void = signal.wait(timeout: .seconds(3600))
            try? await Task.sleep(for: .milliseconds(50))
            signal.notify()
            await waited
        }
        #expect(woken, "the notify woke the waiter")
    }

    @Test("a wait with nobody to notify ends at its deadline, however short")
    func deadline() async {
        let signal = Signal()
        #expect(await Self.finishes {
            await signal.wait(timeout: .milliseconds(1))
            await signal.wait(timeout: .milliseconds(20))
        })
    }
}
