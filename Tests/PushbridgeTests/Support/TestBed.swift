import AsyncHTTPClient
import ConcurrencySupport
import Foundation
import Logging
import MESandbox
import NIOCore
import NIOFoundationCompat
import PushbridgeConfig
import PushbridgeServer
import Storage
import Testing

/// A real sandbox and a real bridge on loopback, with a fresh SQLite file, for one test.
///
/// The bridge is the same `BridgeServer` the executable runs; the sandbox is the standalone one
/// (`pushbridge sandbox`), reached over HTTP like production Mobile Engage.
final class TestBed: @unchecked Sendable {
    let sandbox: MESandbox
    let sandboxPort: Int
    let directory: String
    var configuration: BridgeConfiguration
    private(set) var server: BridgeServer?
    private(set) var bridgePort = 0
    private var serverTask: Task<Void, Error>?
    private var sandboxTask: Task<Void, Error>?
    let http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup)
    static let app = "EMS12-34567"

    static var logger: Logger {
        var l = Logger(label: "test")
        l.logLevel = .critical
        return l
    }

    let logger: Logger

    /// Wraps the bridge's store (fault injection); nil runs the real store alone.
    let wrapStore: (@Sendable (any DeviceStore) -> any DeviceStore)?

    init(
        contactTokenLifetime: Duration = .seconds(3600), logger: Logger = TestBed.logger,
        wrapStore: (@Sendable (any DeviceStore) -> any DeviceStore)? = nil, configure: (inout BridgeConfiguration) -> Void = { _ in }
    ) async throws {
        self.logger = logger
        self.wrapStore = wrapStore
        sandbox = MESandbox(configuration: SandboxConfiguration(contactTokenLifetime: contactTokenLifetime), logger: logger)
        let box = OneShot<Int>()
        let sandbox = self.sandbox
        sandboxTask = Task { try await sandbox.run(host: "127.0.0.1", port: 0) { port in box.succeed(port) } }
        sandboxPort = try await box.value()
        directory = NSTemporaryDirectory() + "pushbridge-test-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var c = BridgeConfiguration()
        c.http.host = "127.0.0.1"
        c.http.port = 0
        c.storageURL = "sqlite://\(directory)/bridge.sqlite"
        c.emarsys.sandbox = false
        c.emarsys.clientServiceURL = "http://127.0.0.1:\(sandboxPort)"
        c.emarsys.eventServiceURL = "http://127.0.0.1:\(sandboxPort)"
        c.emarsys.requestTimeoutSeconds = 5
        c.emarsys.maxConcurrentRequests = 16
        c.emarsys.retry = .init(initialDelayMs: 50, maxDelayMs: 400)
        c.providersDirectory = nil
        // A loaded CI machine (the whole suite on two cores, many beds on one PostgreSQL server) can hold a call
        // for seconds: these tests are about behaviour, not the wait, so an API call waits up to 20 s before its
        // 503 (the test client waits 30 s). The storage-failure tests set their own.
        c.storageTimeoutMs = 20_000
        configure(&c)
        configuration = c
        try await startBridge()
    }

    func startBridge() async throws {
        let server = try await BridgeServer(configuration: configuration, logger: logger, wrapStore: wrapStore)
        self.server = server
        serverTask = Task { try await server.run(signals: []) }
        bridgePort = await server.port()
    }

    func stopBridge() async throws {
        await server?.shutdown()
        _ = try? await serverTask?.value
        server = nil
    }

    func shutdown() async {
        try? await stopBridge()
        sandboxTask?.cancel()
        _ = try? await sandboxTask?.value
        try? await http.shutdown()
        try? FileManager.default.removeItem(atPath: directory)
    }

    // MARK: HTTP

    struct Answer {
        var status: Int
        var headers: [String: String]
        var body: Data
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] ?? [:] }
        var contentType: String { headers["content-type"] ?? "" }
    }

    func request(_ method: String, _ path: String, json: Any? = nil, raw: Data? = nil, headers: [String: String] = [:], port: Int? = nil) async throws -> Answer {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port ?? bridgePort)\(path)")
        request.method = .init(rawValue: method)
        for (k, v) in headers { request.headers.add(name: k, value: v) }
        if let json {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(data: try JSONSerialization.data(withJSONObject: json, options: [.fragmentsAllowed])))
        } else if let raw {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(data: raw))
        }
        let response = try await http.execute(request, timeout: .seconds(30))
        let body = try await response.body.collect(upTo: 16 << 20)
        var h: [String: String] = [:]
        for field in response.headers { h[field.name.lowercased()] = field.value }
        return Answer(status: Int(response.status.code), headers: h, body: Data(buffer: body))
    }

    func sandboxRequest(_ method: String, _ path: String, json: Any? = nil) async throws -> Answer {
        try await request(method, path, json: json, port: sandboxPort)
    }

    func devicePath(_ id: String) -> String { "/v1/apps/\(Self.app)/devices/\(id)" }

    /// Sent by `status` and `waitFor` when the app has keys.
    var statusHeaders: [String: String] = [:]

    func status(_ id: String) async throws -> [String: Any] {
        try await request("GET", devicePath(id), headers: statusHeaders).json
    }

    /// Polls the device's status until `condition` holds; fails the test after `timeout`.
    @discardableResult
    func waitFor(_ id: String, timeout: Duration = .seconds(30), sourceLocation: SourceLocation = #_sourceLocation, _ condition: ([String: Any]) -> Bool) async throws -> [String: Any] {
        let deadline = ContinuousClock.now + timeout
        var last: [String: Any] = [:]
        while ContinuousClock.now < deadline {
            last = try await status(id)
            if condition(last) { return last }
            try await Task.sleep(for: .milliseconds(25))
        }
        Issue.record("device \(id) never reached the expected status; last: \(last)", sourceLocation: sourceLocation)
        return last
    }

    func waitForState(_ id: String, _ state: String, timeout: Duration = .seconds(30), sourceLocation: SourceLocation = #_sourceLocation) async throws -> [String: Any] {
        try await waitFor(id, timeout: timeout, sourceLocation: sourceLocation) { ($0["state"] as? String) == state && ($0["pending"] as? Int) == 0 }
    }

    func clientId(of id: String) async throws -> String {
        try #require(try await status(id)["clientId"] as? String)
    }

    func addFault(_ fault: [String: Any]) async throws {
        let answer = try await sandboxRequest("POST", "/_sandbox/faults", json: fault)
        #expect(answer.status == 201, "sandbox refused the fault: \(String(decoding: answer.body, as: UTF8.self))")
    }

    /// The sandbox as oracle: it saw no invariant violation (I1 one token one client, I2 per-client discipline,
    /// SDK headers) in any request of this test. Every integration test ends with this (`withTestBed`).
    func expectNoViolations(sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let count = await sandbox.violationCount()
        let seen = await sandbox.violations().map { "\($0.kind) \($0.method) \($0.path) client \($0.clientId): \($0.detail)" }
        #expect(count == 0, "the sandbox saw \(count) invariant violation(s): \(seen)", sourceLocation: sourceLocation)
        // And it did judge them: every ME request of the bridge came with its User-Agent, so the invariants profile
        // applied (a client the sandbox took for an SDK would be judged by the ME rules alone, and pass vacuously).
        let unjudged = await sandbox.requestLog().filter { $0.route != nil && !$0.invariantsChecked }
        #expect(unjudged.isEmpty, "ME requests the invariants were not checked on: \(unjudged.prefix(3))", sourceLocation: sourceLocation)
    }

    func clearFaults() async throws {
        _ = try await sandboxRequest("DELETE", "/_sandbox/faults")
    }
}

/// Runs `body` with a fresh test bed and always shuts it down.
func withTestBed(
    contactTokenLifetime: Duration = .seconds(3600), logger: Logger = TestBed.logger,
    wrapStore: (@Sendable (any DeviceStore) -> any DeviceStore)? = nil, configure: (inout BridgeConfiguration) -> Void = { _ in },
    _ body: (TestBed) async throws -> Void
) async throws {
    let bed = try await TestBed(contactTokenLifetime: contactTokenLifetime, logger: logger, wrapStore: wrapStore, configure: configure)
    do {
        try await body(bed)
        try await bed.expectNoViolations()
    } catch {
        await bed.shutdown()
        throw error
    }
    await bed.shutdown()
}
