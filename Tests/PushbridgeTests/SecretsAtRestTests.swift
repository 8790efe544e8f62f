import Foundation
import PushbridgeConfig
import PushbridgeServer
import Testing

@Suite("Secrets at rest", .serialized)
struct SecretsAtRestTests {
    func fileBytes(_ dir: String) throws -> Data {
        var all = Data()
        for name in try FileManager.default.contentsOfDirectory(atPath: dir) where name.hasPrefix("bridge.sqlite") {
            all += try Data(contentsOf: URL(fileURLWithPath: dir + "/" + name))
        }
        return all
    }

    @Test("the database files hold no token or contact value; the key file is created private; the wrong key stops the start")
    func encryptedAtRest() async throws {
        try await withTestBed { bed in
            let token = Tokens.fcm()
            let contact = "secret-contact-\(UUID().uuidString)"
            _ = try await bed.request("PUT", bed.devicePath("d1"), json: ["provider": "fcm", "token": token, "contact": ["fieldValue": contact]])
            try await bed.waitForState("d1", "registered")
            try await bed.stopBridge()
            let bytes = try fileBytes(bed.directory)
            #expect(bytes.count > 0)
            #expect(bytes.range(of: Data(token.utf8)) == nil)
            #expect(bytes.range(of: Data(contact.utf8)) == nil)
            #expect(bytes.range(of: Data("contactToken".utf8)) == nil)

            let keyPath = bed.directory + "/pushbridge.key"
            let attributes = try FileManager.default.attributesOfItem(atPath: keyPath)
            #expect((attributes[.posixPermissions] as? Int) == 0o600)

            var wrong = bed.configuration
            wrong.encryptionKey = Data((0..<32).map { _ in UInt8.random(in: 0...255) }).base64EncodedString()
            do {
                _ = try await BridgeServer(configuration: wrong, logger: TestBed.logger)
                Issue.record("a store opened with the wrong key must not start")
            } catch {
                #expect("\(error)".contains("storage.encryptionKey"))
                #expect("\(error)".contains("another key"))
            }
            // The right key (from the file) still opens it, and the device is intact.
            try await bed.startBridge()
            #expect(try await bed.status("d1")["state"] as? String == "registered")
        }
    }

    @Test("a malformed key names the setting")
    func malformedKey() async throws {
        var c = BridgeConfiguration()
        c.storageURL = "sqlite://\(NSTemporaryDirectory())pb-\(UUID().uuidString)/x.sqlite"
        c.encryptionKey = "too-short"
        do {
            _ = try await BridgeServer(configuration: c, logger: TestBed.logger)
            Issue.record("a malformed key must stop the start")
        } catch {
            #expect("\(error)".contains("storage.encryptionKey"))
        }
    }
}
