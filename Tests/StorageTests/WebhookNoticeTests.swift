import Foundation
import Storage
import Testing
import Workflow

/// `WebhookRouting.step`: what a commit tells backends, from what they last heard. Pure.
@Suite("Webhook notices")
struct WebhookNoticeTests {
    static func device(token: String?, everSent: Bool = true) -> DeviceState {
        var s = DeviceState(clientId: "c", platform: "android")
        s.pushTokenSent = token.map { Fixture.token($0) }
        if everSent { s.steps.pushTokenAt = Date(timeIntervalSince1970: 1) }
        return s
    }

    @Test("registered, then pending for events and back: one event; a new token: another")
    func registeredOnce() {
        let first = WebhookRouting.step(notified: nil, reason: nil, state: .registered, device: Self.device(token: "t1"), reasonNow: nil)
        #expect(first.event == "device.registered")
        let pending = WebhookRouting.step(notified: first.notified, reason: nil, state: .pending, device: Self.device(token: "t1"), reasonNow: nil)
        #expect(pending.event == nil)
        #expect(pending.notified == first.notified)
        let back = WebhookRouting.step(notified: pending.notified, reason: nil, state: .registered, device: Self.device(token: "t1"), reasonNow: nil)
        #expect(back.event == nil)
        let rotated = WebhookRouting.step(notified: back.notified, reason: nil, state: .registered, device: Self.device(token: "t2"), reasonNow: nil)
        #expect(rotated.event == "device.registered")
    }

    @Test("failed, working again, failed again: two events")
    func failedTwice() {
        let failed = WebhookRouting.step(notified: "device.registered:hash-t1", reason: nil, state: .failed, device: Self.device(token: "t1"), reasonNow: nil)
        #expect(failed.event == "device.failed")
        let working = WebhookRouting.step(notified: failed.notified, reason: nil, state: .pending, device: Self.device(token: "t1"), reasonNow: nil)
        #expect(working.event == nil)
        #expect(working.notified == "device.recovering")
        let again = WebhookRouting.step(notified: working.notified, reason: nil, state: .failed, device: Self.device(token: "t1"), reasonNow: nil)
        #expect(again.event == "device.failed")
    }

    @Test("the reason is remembered from the step that removed the token until the device is unregistered; a token at ME clears it")
    func reasons() {
        // The release pops while events are still queued: pending, reason remembered.
        let released = WebhookRouting.step(notified: "device.registered:hash-t1", reason: nil, state: .pending, device: Self.device(token: nil), reasonNow: "moved")
        #expect(released.event == nil)
        #expect(released.reason == "moved")
        // The events' commit enters unregistered; its own step removed nothing.
        let done = WebhookRouting.step(notified: released.notified, reason: released.reason, state: .unregistered, device: Self.device(token: nil), reasonNow: nil)
        #expect(done.event == "device.unregistered")
        #expect(done.eventReason == "moved")
        // A token at ME again: the reason goes.
        let back = WebhookRouting.step(notified: done.notified, reason: done.reason, state: .registered, device: Self.device(token: "t2"), reasonNow: nil)
        #expect(back.reason == nil)
        // No reason known: removed.
        let unknown = WebhookRouting.step(notified: "device.registered:hash-t2", reason: nil, state: .unregistered, device: Self.device(token: nil), reasonNow: nil)
        #expect(unknown.eventReason == "removed")
    }

    @Test("a device that never had a token says nothing on unregistered; one from before webhooks (nothing heard yet) does")
    func neverHadToken() {
        #expect(WebhookRouting.step(notified: nil, reason: nil, state: .unregistered, device: Self.device(token: nil, everSent: false), reasonNow: nil).event == nil)
        let old = WebhookRouting.step(notified: nil, reason: nil, state: .unregistered, device: Self.device(token: nil, everSent: true), reasonNow: "invalidated")
        #expect(old.event == "device.unregistered")
        #expect(old.eventReason == "invalidated")
    }
}
