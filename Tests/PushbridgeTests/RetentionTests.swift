import ConcurrencySupport
import Foundation
import PushbridgeConfig
import Testing

/// `apps[].retention` and `lastSeenAt`: the real server, the real sandbox over loopback and a real webhook receiver, on
/// SQLite and on PostgreSQL (when `PUSHBRIDGE_TEST_POSTGRES_URL` names a server).
/// `PUSHBRIDGE_TEST_RETENTION_SECONDS`: the retention clock of these tests (scripts/test.sh sets 2).
let retentionTestSeconds = ProcessInfo.processInfo.environment["PUSHBRIDGE_TEST_RETENTION_SECONDS"].flatMap(TimeInterval.init)

@Suite(
    "Retention", .serialized,
    .enabled(
        if: retentionTestSeconds != nil,
        "runs alone after the full suite (scripts/test.sh sets PUSHBRIDGE_TEST_RETENTION_SECONDS=2): its clock is seconds, and every suite at once on two cores held one request for longer than that in CI"))
struct RetentionTests {
    /// `unregisterAfter` and `forgetAfter` in these tests (the acceptance asks for 2 s).
    static let seconds = retentionTestSeconds ?? 2

    static func iso(_ text: Any?) -> Date? {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return (text as? String).flatMap { f.date(from: $0) }
    }

    @Test("unregisterAfter (2 s alone): a device left alone ends unregistered at ME (webhook reason expired); one that keeps re-sending its token stays registered", arguments: InvariantRegressionTests.stores)
    func unregisterAfter(store: String) async throws {
        let receiver = try await WebhookReceiver()
        defer { Task { await receiver.stop() } }
        try await WebhookTests.withBed(store, receiver: receiver, configure: { c in
            c.apps[0].retention = BridgeConfiguration.Retention(unregisterAfter: Self.seconds)
        }) { bed in
            let (left, kept) = (Tokens.fcm(), Tokens.fcm())
            _ = try await bed.request("PUT", bed.devicePath("left"), json: ["provider": "fcm", "token": left])
            _ = try await bed.request("PUT", bed.devicePath("kept"), json: ["provider": "fcm", "token": kept])
            // Both re-send their token every 300 ms (deduplicated: no ME call), each on its own, until both are
            // registered, however long a loaded machine takes for that; from then on only kept does. Each re-send
            // moves lastSeenAt forward.
            let leftSeen = LockedValue(Date.distantPast)
            let keptSeen = LockedValue(Date.distantPast)
            let (stopLeft, stopKept) = (LockedValue(false), LockedValue(false))
            func keepAlive(_ id: String, _ token: String, _ seen: LockedValue<Date>, until stop: LockedValue<Bool>) -> Task<Void, Error> {
                Task {
                    while !stop.get() {
                        let again = try await bed.request("PUT", bed.devicePath(id) + "/push-token", json: ["provider": "fcm", "token": token])
                        #expect(again.status == 200 && again.json["deduplicated"] as? Bool == true, "\(id): \(again.status) \(again.json)")
                        let at = try #require(Self.iso(again.json["lastSeenAt"]))
                        #expect(at > seen.get(), "\(id): lastSeenAt moves forward")
                        seen.set(at)
                        try await Task.sleep(for: .milliseconds(300))
                    }
                }
            }
            let leftAlive = keepAlive("left", left, leftSeen, until: stopLeft)
            let keptAlive = keepAlive("kept", kept, keptSeen, until: stopKept)
            try await bed.waitForState("left", "registered")
            try await bed.waitForState("kept", "registered")
            stopLeft.set(true)
            try await leftAlive.value
            let (leftClient, keptClient) = (try await bed.clientId(of: "left"), try await bed.clientId(of: "kept"))
            #expect(await bed.sandbox.client(leftClient)?.pushToken == left)
            // kept goes on for more than twice the duration.
            try await Task.sleep(for: .seconds(Self.seconds * 2.5))
            let leftStatus = try await bed.waitForState("left", "unregistered")
            #expect(leftStatus["tokenHash"] is NSNull)
            #expect(await bed.sandbox.client(leftClient)?.pushToken == nil)
            let removals = await bed.sandbox.requestLog().filter { $0.clientId == leftClient && $0.method == "DELETE" && $0.path.hasSuffix("/push-token") }
            #expect(removals.map(\.status) == [204])
            // Neither the engine's work nor the sweep is a sighting: lastSeenAt stays at the device's last write.
            #expect(Self.iso(leftStatus["lastSeenAt"]) == leftSeen.get())

            stopKept.set(true)
            try await keptAlive.value
            let keptStatus = try await bed.status("kept")
            #expect(keptStatus["state"] as? String == "registered")
            #expect(await bed.sandbox.client(keptClient)?.pushToken == kept)
            // The deduplicated writes' sightings reached the store (they are batched, a fifth of a second).
            try await Task.sleep(for: .milliseconds(500))
            #expect(Self.iso(try await bed.status("kept")["lastSeenAt"]) == keptSeen.get())

            let deliveries = try await receiver.waitFor { WebhookTests.byDevice($0)["left"]?.count == 2 }
            #expect(WebhookTests.byDevice(deliveries)["left"] == ["device.registered", "device.unregistered:expired"])
            #expect(WebhookTests.byDevice(deliveries)["kept"] == ["device.registered"])

            // A new write brings the device back: its token registers again.
            _ = try await bed.request("PUT", bed.devicePath("left"), json: ["provider": "fcm", "token": left])
            try await bed.waitForState("left", "registered")
            #expect(await bed.sandbox.client(leftClient)?.pushToken == left)
        }
    }

    @Test("forgetAfter: a device not seen for that long is forgotten as by DELETE (token removed at ME first), a device seen is kept", arguments: InvariantRegressionTests.stores)
    func forgetAfter(store: String) async throws {
        try await InvariantRegressionTests.withBed(store, configure: { c in
            c.apps[0].retention = BridgeConfiguration.Retention(unregisterAfter: 3600, forgetAfter: Self.seconds)
        }) { bed in
            let (gone, kept) = (Tokens.apnsHex(), Tokens.fcm())
            _ = try await bed.request("PUT", bed.devicePath("gone"), json: ["provider": "apns", "token": gone])
            _ = try await bed.request("PUT", bed.devicePath("kept"), json: ["provider": "fcm", "token": kept])
            // Both re-send their token until both are registered (however long that takes), then only kept does.
            let registeredBy = Date().addingTimeInterval(30)
            while Date() < registeredBy {
                _ = try await bed.request("PUT", bed.devicePath("gone") + "/push-token", json: ["provider": "apns", "token": gone])
                _ = try await bed.request("PUT", bed.devicePath("kept") + "/push-token", json: ["provider": "fcm", "token": kept])
                let states = [try await bed.status("gone")["state"] as? String, try await bed.status("kept")["state"] as? String]
                if states == ["registered", "registered"] { break }
                try await Task.sleep(for: .milliseconds(300))
            }
            let goneClient = try await bed.clientId(of: "gone")
            let deadline = Date().addingTimeInterval(30)
            while Date() < deadline, try await bed.request("GET", bed.devicePath("gone")).status != 404 {
                try await Task.sleep(for: .milliseconds(400))
                let again = try await bed.request("PUT", bed.devicePath("kept") + "/push-token", json: ["provider": "fcm", "token": kept])
                #expect(again.json["deduplicated"] as? Bool == true)
            }
            #expect(try await bed.request("GET", bed.devicePath("gone")).status == 404)
            #expect(await bed.sandbox.client(goneClient)?.pushToken == nil)
            #expect(try await bed.status("kept")["state"] as? String == "registered")
        }
    }
}
