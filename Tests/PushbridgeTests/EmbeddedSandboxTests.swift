import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOFoundationCompat
import PushbridgeConfig
import PushbridgeServer
import Testing

/// `pushbridge serve` with the built-in defaults: SQLite and the sandbox embedded at /sandbox.
/// This is the README's walkthrough, request for request.
@Suite("Embedded default")
struct EmbeddedSandboxTests {
    @Test("the README walkthrough: register a device, read its status, inspect the sandbox, report the token dead")
    func walkthrough() async throws {
        let dir = NSTemporaryDirectory() + "pushbridge-embedded-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var config = try ConfigLoader.load(file: nil, environment: [:])
        #expect(config.emarsys.sandbox)
        #expect(config.http.port == 8080)
        config.http.port = 0
        config.http.host = "127.0.0.1"
        config.storageURL = "sqlite://\(dir)/pushbridge.sqlite"
        config.providersDirectory = nil
        let server = try await BridgeServer(configuration: config, logger: TestBed.logger)
        let task = Task { try await server.run(signals: []) }
        let port = await server.port()
        let http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup)
        func call(_ method: String, _ path: String, _ body: String? = nil) async throws -> (Int, [String: Any]) {
            var r = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
            r.method = .init(rawValue: method)
            if let body {
                r.headers.add(name: "Content-Type", value: "application/json")
                r.body = .bytes(ByteBuffer(string: body))
            }
            let resp = try await http.execute(r, timeout: .seconds(10))
            let data = Data(buffer: try await resp.body.collect(upTo: 1 << 20))
            return (Int(resp.status.code), (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:])
        }
        do {
            let (code, started) = try await call("PUT", "/v1/apps/EMS12-34567/devices/phone-1", #"{"provider": "fcm", "token": "fcm-token-1:APA91bExample", "device": {"applicationVersion": "2.4.0", "osVersion": "15"}}"#)
            #expect(code == 202)
            #expect(started["state"] as? String == "pending")
            var status: [String: Any] = [:]
            for _ in 0..<400 {
                status = try await call("GET", "/v1/apps/EMS12-34567/devices/phone-1").1
                if status["state"] as? String == "registered" { break }
                try await Task.sleep(for: .milliseconds(25))
            }
            #expect(status["state"] as? String == "registered")
            let clientId = try #require(status["clientId"] as? String)
            let (sc, client) = try await call("GET", "/sandbox/_sandbox/clients/\(clientId)")
            #expect(sc == 200)
            #expect(client["pushToken"] as? String == "fcm-token-1:APA91bExample")
            #expect((client["counts"] as? [String: Any])?["pushTokenPuts"] as? Int == 1)
            // The backend's own send found the token dead: reported, it leaves ME and the device ends unregistered.
            let report = #"{"provider": "fcm", "token": "fcm-token-1:APA91bExample", "reason": "UNREGISTERED"}"#
            let (ic, invalidated) = try await call("POST", "/v1/apps/EMS12-34567/tokens/invalidate", report)
            #expect(ic == 202)
            #expect((invalidated["devices"] as? [[String: Any]])?.first?["tokenHash"] is NSNull)
            for _ in 0..<400 {
                status = try await call("GET", "/v1/apps/EMS12-34567/devices/phone-1").1
                if status["state"] as? String == "unregistered" { break }
                try await Task.sleep(for: .milliseconds(25))
            }
            #expect(status["state"] as? String == "unregistered")
            #expect(try await call("GET", "/sandbox/_sandbox/clients/\(clientId)").1["pushToken"] is NSNull)
            let (againCode, again) = try await call("POST", "/v1/apps/EMS12-34567/tokens/invalidate", report)
            #expect(againCode == 200 && again["deduplicated"] as? Bool == true)
            let (healthCode, health) = try await call("GET", "/health")
            #expect(healthCode == 200 && health["status"] as? String == "ok")
            let (readyCode, ready) = try await call("GET", "/ready")
            #expect(readyCode == 200 && ready["ready"] as? Bool == true)
            // The embedded sandbox, as oracle, saw no invariant violation (over HTTP, as a user would ask it).
            let (violationsCode, _) = try await call("GET", "/sandbox/_sandbox/violations")
            #expect(violationsCode == 200)
            #expect(await server.sandbox?.violationCount() == 0)
            // A page on another origin may call the embedded sandbox (CORS, "Develop against the sandbox"); the bridge's
            // own API is not opened to browsers by it.
            func preflight(_ path: String) async throws -> HTTPClientResponse {
                var r = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
                r.method = .OPTIONS
                r.headers.add(name: "Origin", value: "http://localhost:3000")
                r.headers.add(name: "Access-Control-Request-Method", value: "POST")
                r.headers.add(name: "Access-Control-Request-Headers", value: "content-type,x-client-id,x-request-order")
                return try await http.execute(r, timeout: .seconds(10))
            }
            let sandboxPreflight = try await preflight("/sandbox/v3/domains/EMS12-34567/client")
            #expect(sandboxPreflight.status.code == 204)
            #expect(sandboxPreflight.headers.first(name: "Access-Control-Allow-Origin") == "*")
            let apiPreflight = try await preflight("/v1/apps/EMS12-34567/devices/phone-1")
            #expect(apiPreflight.headers.first(name: "Access-Control-Allow-Origin") == nil)
        } catch {
            Issue.record(error)
        }
        await server.shutdown()
        _ = try? await task.value
        try await http.shutdown()
    }
}
