import Foundation
import MobileEngage
import Testing
@testable import Workflow

@Suite("Login, logout, token removal, moves, client id changes, forget")
struct ContactAndTokenTests {
    @Test("login links the identified contact and sends the token again; logout goes back to anonymous")
    func loginLogout() {
        var h = registeredDevice()
        h.enqueue(.login(fieldId: 3, value: "a@example.com"))
        h.run()
        #expect(h.endpoints == ["contact", "push_token_put"])
        h.calls.removeAll()
        h.enqueue(.logout)
        h.run()
        #expect(h.endpoints == ["contact_anonymous", "push_token_put"])
        #expect(h.state.linkedContact == .anonymous)
    }

    @Test("several rotations queued: only the newest token is sent")
    func rotationsCollapseAtIntake() {
        // Collapse happens at intake: the newer set-token replaces the queued one.
        let h = registeredDevice()
        let queued = [Intent(id: 1, payload: .setToken(token(2)), acceptedAt: Date())]
        let view = IntakeView(exists: true, state: h.state, queued: queued, tokenHolder: nil)
        #expect(Intake.decide(.setToken(token(3)), view: view, policy: AppPolicy()) == .enqueue(.setToken(token(3)), collapse: true, takeTokenFrom: nil))
    }

    @Test("removing the token deletes it at ME; the device ends unregistered")
    func removal() {
        var h = registeredDevice()
        h.enqueue(.removeToken)
        h.run()
        #expect(h.endpoints == ["push_token_delete"])
        #expect(h.state.pushTokenSent == nil && h.state.wantedToken == nil)
        #expect(DeviceStateName.of(h.state, pending: 0) == .unregistered)
        // A later start does not bring the removed token back.
        h.calls.removeAll()
        h.enqueue(start(token: nil))
        h.run()
        #expect(h.endpoints == ["events"])
    }

    @Test("a release removes the moved token when this device holds it at ME, and jumps the queue")
    func releaseHeldToken() {
        var h = registeredDevice()
        h.enqueue(.events([CustomEvent(name: "x", timestamp: "2026-01-01T00:00:00.000Z", attributes: nil)]))
        h.enqueue(.release(tokenHash: token(1).tokenHash))
        h.run()
        #expect(h.endpoints == ["push_token_delete", "events"])
        #expect(h.state.pushTokenSent == nil && h.state.wantedToken == nil)
    }

    @Test("a release of a token this device no longer holds sends nothing")
    func releaseNotHeld() {
        var h = registeredDevice()
        h.enqueue(.release(tokenHash: token(7).tokenHash))
        h.run()
        #expect(h.calls.isEmpty)
        #expect(h.state.pushTokenSent == token(1))
    }

    @Test("the device that takes a moved token waits until the release is done")
    func moveBlocked() {
        var h = registeredDevice()
        h.enqueue(.setToken(token(2)))
        #expect(h.run(moveBlocked: true) == .wait(.tokenMove))
        #expect(h.calls.isEmpty)
        #expect(h.run(moveBlocked: false) == .idle)
        #expect(h.endpoints == ["push_token_put"])
    }

    @Test("a start with another client id removes the old client's token, then runs everything under the new id")
    func clientIdChange() {
        var h = registeredDevice()
        h.enqueue(start(clientId: "client-2"))
        h.run()
        #expect(h.endpoints == ["push_token_delete", "client", "contact_anonymous", "events", "push_token_put"])
        #expect(h.contexts[0].clientId == "client-1")
        #expect(h.contexts[1...].allSatisfy { $0.clientId == "client-2" })
        #expect(h.contexts[1].clientState == nil)
        #expect(h.state.clientId == "client-2")
    }

    @Test("forget removes the token at ME, then forgets the device")
    func forget() {
        var h = registeredDevice()
        h.enqueue(.forget)
        #expect(h.run() == .forget)
        #expect(h.endpoints == ["push_token_delete"])
        #expect(h.forgotten)
    }

    @Test("platform change (FCM to HMS) sends the device info again")
    func platformChange() {
        var h = registeredDevice()
        h.enqueue(.setToken(token(5, provider: "hms", platform: "android-huawei")))
        h.run()
        #expect(h.endpoints == ["client", "push_token_put"])
        guard case .setClient(let body) = h.calls[0] else { return }
        #expect(body.platform == "android-huawei")
    }
}

@Suite("Intake: deduplication at the API")
struct IntakeTests {
    let policy = AppPolicy()

    @Test("the same token again is deduplicated; a new one is queued with collapse")
    func tokenDedup() {
        let h = registeredDevice()
        let view = IntakeView(exists: true, state: h.state, queued: [], tokenHolder: nil)
        #expect(Intake.decide(.setToken(token(1)), view: view, policy: policy) == .deduplicated)
        #expect(Intake.decide(.setToken(token(2)), view: view, policy: policy) == .enqueue(.setToken(token(2)), collapse: true, takeTokenFrom: nil))
    }

    @Test("the newest queued token decides, not the one at ME")
    func newestQueuedDecides() {
        let h = registeredDevice()
        let queued = [Intent(id: 9, payload: .setToken(token(2)), acceptedAt: Date())]
        let view = IntakeView(exists: true, state: h.state, queued: queued, tokenHolder: nil)
        #expect(Intake.decide(.setToken(token(2)), view: view, policy: policy) == .deduplicated)
        if case .enqueue = Intake.decide(.setToken(token(1)), view: view, policy: policy) {} else { Issue.record("going back to the sent token must be queued") }
    }

    @Test("after a permanent failure the same token is sent again")
    func failedNotDeduplicated() {
        var h = registeredDevice()
        h.enqueue(.setToken(token(2)))
        h.run { _, _ in .status(400) }
        let view = IntakeView(exists: true, state: h.state, queued: h.queue, tokenHolder: nil)
        if case .enqueue = Intake.decide(.setToken(token(2)), view: view, policy: policy) {} else { Issue.record("must be queued again") }
    }

    @Test("a failed head still counts: a logout or removal that meets a failed login or token is stored, not deduplicated")
    func failedHeadIsNotForgotten() {
        var h = registeredDevice()
        h.enqueue(.login(fieldId: 3, value: "x"))
        h.run { _, _ in .status(400) }
        #expect(h.state.failed)
        let loginFailed = IntakeView(exists: true, state: h.state, queued: h.queue, tokenHolder: nil)
        // Linked anonymously, but the failed login would be retried at the next wake: the logout must be queued.
        #expect(Intake.decide(.logout, view: loginFailed, policy: policy) == .enqueue(.logout, collapse: false, takeTokenFrom: nil))
        var t = registeredDevice()
        t.enqueue(.setToken(token(2)))
        t.run { _, _ in .status(400) }
        let tokenFailed = IntakeView(exists: true, state: t.state, queued: t.queue, tokenHolder: nil)
        #expect(Intake.decide(.setToken(token(1)), view: tokenFailed, policy: policy) == .enqueue(.setToken(token(1)), collapse: true, takeTokenFrom: nil))
    }

    @Test("nothing queued before a forget counts: the same login after a DELETE is stored")
    func forgetStartsAfresh() {
        let h = registeredDevice()
        let queued = [
            Intent(id: 1, payload: .login(fieldId: 3, value: "u1"), acceptedAt: Date()),
            Intent(id: 2, payload: .forget, acceptedAt: Date()),
        ]
        let view = IntakeView(exists: true, state: h.state, queued: queued, tokenHolder: nil)
        #expect(Intake.decide(.login(fieldId: 3, value: "u1"), view: view, policy: policy) == .enqueue(.login(fieldId: 3, value: "u1"), collapse: false, takeTokenFrom: nil))
        #expect(Intake.decide(.logout, view: view, policy: policy) == .deduplicated)
    }

    @Test("login and logout deduplicate against the newest requested contact")
    func contactDedup() {
        let h = registeredDevice()
        let anonymous = IntakeView(exists: true, state: h.state, queued: [], tokenHolder: nil)
        #expect(Intake.decide(.logout, view: anonymous, policy: policy) == .deduplicated)
        let login = Intent(id: 3, payload: .login(fieldId: 3, value: "v"), acceptedAt: Date())
        let loggingIn = IntakeView(exists: true, state: h.state, queued: [login], tokenHolder: nil)
        #expect(Intake.decide(.login(fieldId: 3, value: "v"), view: loggingIn, policy: policy) == .deduplicated)
        #expect(Intake.decide(.login(fieldId: 4, value: "v"), view: loggingIn, policy: policy) != .deduplicated)
        #expect(Intake.decide(.logout, view: loggingIn, policy: policy) == .enqueue(.logout, collapse: false, takeTokenFrom: nil))
    }

    @Test("removing a token from a device without one is deduplicated; from one still heading to a token it is stored")
    func removalDedup() {
        var h = registeredDevice()
        h.state.pushTokenSent = nil
        h.state.wantedToken = nil
        let view = IntakeView(exists: true, state: h.state, queued: [], tokenHolder: nil)
        #expect(Intake.decide(.removeToken, view: view, policy: policy) == .deduplicated)
        // Wanted but not at ME (a start that changed the client re-sends it): the removal must win over that send.
        h.state.wantedToken = token(1)
        let heading = IntakeView(exists: true, state: h.state, queued: [], tokenHolder: nil)
        #expect(Intake.decide(.removeToken, view: heading, policy: policy) == .enqueue(.removeToken, collapse: true, takeTokenFrom: nil))
        // The same for a contact wanted but not linked yet: a logout is stored.
        h.state.wantedContact = .identified(fieldId: 3, value: "u")
        h.state.linkedContact = nil
        let linking = IntakeView(exists: true, state: h.state, queued: [], tokenHolder: nil)
        #expect(Intake.decide(.logout, view: linking, policy: policy) == .enqueue(.logout, collapse: false, takeTokenFrom: nil))
    }

    @Test("a token held by another device moves from it")
    func move() {
        let other = DeviceKey(appCode: "EMS12-34567", deviceId: "old")
        let view = IntakeView(exists: false, state: nil, queued: [], tokenHolder: other)
        #expect(Intake.decide(.setToken(token(1)), view: view, policy: policy) == .enqueue(.setToken(token(1)), collapse: true, takeTokenFrom: other))
    }

    @Test("writes other than a start or a token need a known device")
    func unknownDevice() {
        let view = IntakeView(exists: false, state: nil, queued: [], tokenHolder: nil)
        #expect(Intake.decide(.logout, view: view, policy: policy) == .unknownDevice)
        #expect(Intake.decide(.login(fieldId: 3, value: "v"), view: view, policy: policy) == .unknownDevice)
        #expect(Intake.decide(.forget, view: view, policy: policy) == .unknownDevice)
        #expect(Intake.decide(.events([]), view: view, policy: policy) == .unknownDevice)
    }
}
