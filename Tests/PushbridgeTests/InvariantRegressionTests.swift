import Crypto
import Foundation
import PushbridgeConfig
import Testing

/// The three breaks of issue 13, through the real server and the real sandbox over loopback, on SQLite and on
/// PostgreSQL (when `PUSHBRIDGE_TEST_POSTGRES_URL` names a server: scripts/test.sh starts one, and CI fails
/// when it cannot).
@Suite("Invariant regressions: one token, one client; refresh on every path", .serialized)
struct InvariantRegressionTests {
    static let postgresURL = ProcessInfo.processInfo.environment["PUSHBRIDGE_TEST_POSTGRES_URL"].flatMap { $0.isEmpty ? nil : $0 }
    static let stores: [String] = postgresURL == nil ? ["sqlite"] : ["sqlite", "postgres"]

    /// The test bed on `store`: SQLite in the bed's folder, or a fresh schema of the test PostgreSQL server.
    static func withBed(
        _ store: String, configure more: (inout BridgeConfiguration) -> Void = { _ in }, _ body: (TestBed) async throws -> Void
    ) async throws {
        try await withTestBed(configure: { c in
            more(&c)
            guard store == "postgres", let url = postgresURL else { return }
            let schema = "inv\(UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(12).lowercased())"
            c.storageURL = url + (url.contains("?") ? "&" : "?") + "schema=\(schema)"
            c.encryptionKey = SymmetricKey(size: .bits256).withUnsafeBytes { Data($0).base64EncodedString() }
        }, body)
    }

    @Test("a token moving from a device whose contact token expired: the DELETE refreshes and succeeds; ME holds it only on the new device", arguments: stores)
    func moveFromDeviceWithExpiredContactToken(store: String) async throws {
        try await Self.withBed(store) { bed in
            let token = Tokens.fcm()
            _ = try await bed.request("PUT", bed.devicePath("a"), json: ["provider": "fcm", "token": token])
            try await bed.waitForState("a", "registered")
            let a = try await bed.clientId(of: "a")
            #expect(try await bed.sandboxRequest("POST", "/_sandbox/contact-tokens/expire").status == 200)
            #expect(try await bed.request("PUT", bed.devicePath("b"), json: ["provider": "fcm", "token": token]).status == 202)
            try await bed.waitForState("b", "registered")
            let statusA = try await bed.waitForState("a", "unregistered")
            #expect(statusA["tokenHash"] is NSNull)
            #expect(statusA["lastError"] is NSNull)
            let b = try await bed.clientId(of: "b")
            #expect(await bed.sandbox.client(a)?.pushToken == nil)
            #expect(await bed.sandbox.client(b)?.pushToken == token)
            // A's DELETE met a 401, refreshed, and was then acknowledged, before B's PUT.
            let log = await bed.sandbox.requestLog()
            let refresh = try #require(log.firstIndex { $0.clientId == a && $0.path.hasSuffix("/contact-token") && $0.status == 200 })
            let delete = try #require(log.firstIndex { $0.clientId == a && $0.method == "DELETE" && $0.status == 204 })
            let put = try #require(log.firstIndex { $0.clientId == b && $0.method == "PUT" && $0.status == 204 })
            #expect(refresh < delete && delete < put)
        }
    }

    @Test("a token only queued on a device whose PUT is being retried never reaches ME there after it moved", arguments: stores)
    func queuedTokenMovesWhileItsPutIsRetried(store: String) async throws {
        try await Self.withBed(store) { bed in
            let (t1, t2) = (Tokens.fcm(), Tokens.fcm())
            _ = try await bed.request("PUT", bed.devicePath("c"), json: ["provider": "fcm", "token": t1])
            try await bed.waitForState("c", "registered")
            let c = try await bed.clientId(of: "c")
            try await bed.addFault(["mode": "status", "status": 503, "method": "PUT", "path": "/push-token", "unlimited": true])
            _ = try await bed.request("PUT", bed.devicePath("c"), json: ["provider": "fcm", "token": t2])
            try await bed.waitFor("c") { ($0["state"] as? String) == "retrying" }
            #expect(try await bed.request("PUT", bed.devicePath("d"), json: ["provider": "fcm", "token": t2]).status == 202)
            try await Task.sleep(for: .milliseconds(300))
            try await bed.clearFaults()
            try await bed.waitForState("d", "registered")
            let statusC = try await bed.waitForState("c", "unregistered")
            #expect(statusC["tokenHash"] is NSNull)
            let d = try await bed.clientId(of: "d")
            #expect(await bed.sandbox.client(c)?.pushToken == nil)
            #expect(await bed.sandbox.client(d)?.pushToken == t2)
            // Every PUT of C after its first registration was refused by the fault: t2 never sat on C.
            let requestsOfC = await bed.sandbox.requestLog().filter { $0.clientId == c }
            let putsOfC = requestsOfC.filter { $0.method == "PUT" }
            #expect(putsOfC.dropFirst().allSatisfy { $0.status == 503 }, "\(requestsOfC.map { "\($0.method) \($0.path) \($0.status)" })")
        }
    }

    @Test("a device failed on 401s refreshes and registers on its next intent", arguments: stores)
    func failedDeviceRefreshesOnNewIntent(store: String) async throws {
        try await Self.withBed(store) { bed in
            _ = try await bed.request("PUT", bed.devicePath("f"), json: ["provider": "fcm", "token": Tokens.fcm()])
            try await bed.waitForState("f", "registered")
            // Every push-token PUT answered 401: three refreshes, a re-link, then the step fails.
            try await bed.addFault(["mode": "status", "status": 401, "method": "PUT", "path": "/push-token", "unlimited": true])
            _ = try await bed.request("PUT", bed.devicePath("f") + "/push-token", json: ["provider": "fcm", "token": Tokens.fcm()])
            try await bed.waitFor("f") { ($0["state"] as? String) == "failed" }
            try await bed.clearFaults()
            // Meanwhile the contact token expired: the new intent's PUT meets a genuine 401 and must refresh.
            #expect(try await bed.sandboxRequest("POST", "/_sandbox/contact-tokens/expire").status == 200)
            let f = try await bed.clientId(of: "f")
            let refreshesBefore = await bed.sandbox.requestLog().filter { $0.clientId == f && $0.path.hasSuffix("/contact-token") }.count
            let latest = Tokens.fcm()
            _ = try await bed.request("PUT", bed.devicePath("f") + "/push-token", json: ["provider": "fcm", "token": latest])
            try await bed.waitForState("f", "registered")
            let refreshesAfter = await bed.sandbox.requestLog().filter { $0.clientId == f && $0.path.hasSuffix("/contact-token") }.count
            #expect(refreshesAfter > refreshesBefore)
            #expect(await bed.sandbox.client(f)?.pushToken == latest)
        }
    }
}
