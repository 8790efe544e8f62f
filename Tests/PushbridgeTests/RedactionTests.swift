import Foundation
import Storage
import Testing
import Workflow

/// The whole workflow at trace level, every log line captured: no push token, Web Push endpoint or
/// key, contact token, refresh token or contact field value may appear in any of them.
@Suite("Log redaction", .serialized)
struct RedactionTests {
    @Test("no secret in any log line at trace level")
    func noSecretsInLogs() async throws {
        let capture = LogCapture()
        var secrets: [String] = []
        try await withTestBed(logger: capture.logger(level: .trace)) { bed in
            let fcm = Tokens.fcm()
            let web = Tokens.subscription(host: "fcm.googleapis.com", path: "/fcm/send/")
            let endpoint = try #require(web["endpoint"] as? String)
            let keys = try #require(web["keys"] as? [String: String])
            let contactValue = "jane.doe+\(UUID().uuidString.prefix(8))@example.com"
            secrets += [fcm, endpoint, String(endpoint.split(separator: "/").last!), keys["p256dh"]!, keys["auth"]!, contactValue]

            _ = try await bed.request("PUT", bed.devicePath("a"), json: ["provider": "fcm", "token": fcm, "contact": ["fieldValue": contactValue]])
            _ = try await bed.request("PUT", bed.devicePath("b"), json: ["provider": "chrome", "token": web])
            try await bed.waitForState("a", "registered")
            try await bed.waitForState("b", "registered")
            await bed.sandbox.expireContactTokens()
            _ = try await bed.request("POST", bed.devicePath("a") + "/events", json: ["events": [["name": "purchase", "attributes": ["sku": "x"]]]])
            try await bed.waitForState("a", "registered")
            await bed.sandbox.expireContactTokens()
            await bed.sandbox.revokeRefreshTokens()
            let fcm2 = Tokens.fcm()
            secrets.append(fcm2)
            _ = try await bed.request("PUT", bed.devicePath("a") + "/push-token", json: ["provider": "fcm", "token": fcm2])
            try await bed.waitForState("a", "registered")
            _ = try await bed.request("PUT", bed.devicePath("a") + "/push-token", json: ["provider": "apns", "token": "not valid"])
            // The contact routes: the value in their bodies, in their answers' devices, and in a refused one.
            let contacts = "/v1/apps/\(TestBed.app)/contacts/"
            #expect(try await bed.request("POST", contacts + "devices", json: ["fieldValue": contactValue]).status == 200)
            #expect(try await bed.request("POST", contacts + "devices", json: ["fieldValue": contactValue, "fieldId": "x"]).status == 422)
            // The tokens ME issued, as the bridge stored them.
            let store = try #require(bed.server?.store)
            for id in ["a", "b"] {
                let state = try #require(try await store.loadWork(DeviceKey(appCode: TestBed.app, deviceId: id))).state
                secrets += [state.contactToken, state.refreshToken, state.clientState].compactMap { $0 }
            }
            try await bed.stopBridge()
            try await bed.startBridge()
        }
        let lines = capture.all
        #expect(lines.count > 20, "trace logging must have produced lines")
        for secret in secrets where secret.count >= 8 {
            let leaking = lines.filter { $0.contains(secret) }
            #expect(leaking.isEmpty, "a secret appears in \(leaking.count) log lines, e.g. \(leaking.first?.prefix(300) ?? "")")
        }
    }
}
