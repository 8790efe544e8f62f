import Foundation
import MobileEngage
import Testing
@testable import Workflow

@Suite("Start workflow")
struct StartWorkflowTests {
    @Test("a new device: client, anonymous link, start event, push token, in that order")
    func newDevice() {
        var h = Harness()
        h.enqueue(start())
        #expect(h.run() == .idle)
        #expect(h.endpoints == ["client", "contact_anonymous", "events", "push_token_put"])
        guard case .events(let events, _) = h.calls[2] else { Issue.record("third call is not events"); return }
        #expect(events.map(\.name) == ["app:start"])
        #expect(events[0].type == .internal)
        guard case .setPushToken(let sent) = h.calls[3] else { Issue.record("fourth call is not the token"); return }
        #expect(sent == "token-1")
        #expect(h.state.pushTokenSent == token(1))
        #expect(h.queue.isEmpty)
        #expect(DeviceStateName.of(h.state, pending: 0) == .registered)
    }

    @Test("every request echoes the newest client state and a strictly increasing request order")
    func headersFollowState() {
        var h = Harness()
        h.enqueue(start())
        var issued: [String] = []
        h.run { call, _ in
            let a = MEAnswer.ok(call)
            issued.append(a.clientState!)
            return a
        }
        #expect(h.contexts[0].clientState == nil)
        for i in 1..<h.contexts.count {
            #expect(h.contexts[i].clientState == issued[i - 1])
            #expect(h.contexts[i].requestOrder > h.contexts[i - 1].requestOrder)
        }
        // X-Contact-Token where the SDKs send it, once one is stored: none yet on the first POST /client and the
        // anonymous link; on the start event and the PUT.
        let sent = zip(h.calls, h.contexts).map { call, context in
            MEWireFormat.headers(of: call, context: context, sdkVersion: "t").contains { $0.0 == "X-Contact-Token" }
        }
        #expect(sent == [false, false, true, true])
        #expect(h.contexts[2].contactToken != nil)
    }

    @Test("request order is max(now, last + 1) even when the clock goes back")
    func requestOrderMonotonic() {
        var h = registeredDevice()
        let last = h.state.lastRequestOrder
        h.nowMs = last - 10_000
        h.enqueue(.setToken(token(2)))
        h.run()
        #expect(h.contexts.first?.requestOrder == last + 1)
    }

    @Test("a second start with the same device info sends only the start event")
    func secondStart() {
        var h = registeredDevice()
        h.enqueue(start())
        h.run()
        #expect(h.endpoints == ["events"])
    }

    @Test("changed device info is sent again; the sdkVersion alone is not a change")
    func deviceInfoChange() {
        var h = registeredDevice()
        h.enqueue(start(info: DeviceInfo(osVersion: "15")))
        h.run()
        #expect(h.endpoints == ["client", "events"])
        guard case .setClient(let body) = h.calls[0] else { return }
        #expect(body.osVersion == "15")
        #expect(body.applicationVersion == "unknown" && body.language == "en" && body.timezone == "+0000")
        let a = DeviceInfo().body(platform: "ios", sdkVersion: "1.0")
        let b = DeviceInfo().body(platform: "ios", sdkVersion: "2.0")
        #expect(DeviceInfoHash.of(a) == DeviceInfoHash.of(b))
        #expect(DeviceInfoHash.of(a) != DeviceInfoHash.of(DeviceInfo().body(platform: "android", sdkVersion: "1.0")))
    }

    @Test("no start event when the app configures none")
    func noStartEvent() {
        var h = Harness()
        h.policy = AppPolicy(anonymousContacts: true, startEvent: nil)
        h.enqueue(start())
        h.run()
        #expect(h.endpoints == ["client", "contact_anonymous", "push_token_put"])
    }

    @Test("a start that carries a contact links it identified, not anonymous")
    func startWithContact() {
        var h = Harness()
        h.enqueue(start(contact: .identified(fieldId: 3, value: "a@example.com")))
        h.run()
        #expect(h.endpoints == ["client", "contact", "events", "push_token_put"])
        #expect(h.state.linkedContact == .identified(fieldId: 3, value: "a@example.com"))
    }

    @Test("without anonymous contacts a device waits for a login, then goes on")
    func waitsForLogin() {
        var h = Harness()
        h.policy = AppPolicy(anonymousContacts: false, startEvent: "app:start")
        h.enqueue(start())
        #expect(h.run() == .wait(.login))
        #expect(h.endpoints == ["client"])
        h.enqueue(.login(fieldId: 3, value: "x"))
        // The login queued behind the waiting start is linked at once, and the start goes on.
        #expect(h.run() == .idle)
        #expect(h.endpoints == ["client", "contact", "events", "push_token_put"])
        #expect(h.state.linkedContact == .identified(fieldId: 3, value: "x"))
    }

    @Test("the start event's timestamp is when the intent was accepted, UTC with milliseconds")
    func startEventTimestamp() {
        var h = Harness()
        h.nowMs = 1_764_410_400_123  // 2025-11-29T10:00:00.123Z
        h.enqueue(start())
        h.nowMs += 60_000
        h.run()
        guard case .events(let events, _) = h.calls[2] else { return }
        #expect(events[0].timestamp == "2025-11-29T10:00:00.123Z")
    }
}
