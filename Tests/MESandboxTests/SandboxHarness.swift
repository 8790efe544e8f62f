import AsyncHTTPClient
import Foundation
import Hummingbird
import Logging
import MESandbox
import NIOCore
import NIOHTTP1

/// A running sandbox on an ephemeral loopback port plus an HTTP client to talk to it.
///
/// Every test gets its own `MESandbox` and server, so tests can run in parallel without sharing state.
struct SandboxHarness: Sendable {
    let sandbox: MESandbox
    let baseURL: String

    /// Runs `body` against a fresh sandbox served by `MESandbox.run`, and stops the server afterwards.
    static func withSandbox(
        configuration: SandboxConfiguration = .init(),
        _ body: @Sendable (SandboxHarness) async throws -> Void
    ) async throws {
        let sandbox = MESandbox(configuration: configuration, logger: testLogger)
        try await withServer(sandbox: sandbox, prefix: "", server: { port in
            try await sandbox.run(host: "127.0.0.1", port: 0) { await port($0) }
        }, body)
    }

    /// Like `withSandbox`, but mounts the routes with `addRoutes` on a `BasicRequestContext` router below `prefix`,
    /// the way the pushbridge service embeds the sandbox.
    static func withMountedSandbox(
        prefix: String,
        _ body: @Sendable (SandboxHarness) async throws -> Void
    ) async throws {
        let sandbox = MESandbox(logger: testLogger)
        try await withServer(sandbox: sandbox, prefix: prefix, server: { port in
            let router = Router()
            sandbox.addRoutes(to: router, prefix: prefix)
            let app = Application(
                router: router,
                configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                onServerRunning: { await port($0.localAddress?.port ?? 0) },
                logger: testLogger
            )
            try await app.runService()
        }, body)
    }

    private static func withServer(
        sandbox: MESandbox,
        prefix: String,
        server: @escaping @Sendable (@escaping @Sendable (Int) async -> Void) async throws -> Void,
        _ body: @Sendable (SandboxHarness) async throws -> Void
    ) async throws {
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                try await server { port in continuation.yield(port) }
            }
            var iterator = ports.makeAsyncIterator()
            guard let port = await iterator.next() else { throw HarnessError.serverDidNotStart }
            let harness = SandboxHarness(sandbox: sandbox, baseURL: "http://127.0.0.1:\(port)\(prefix)")
            do {
                try await body(harness)
            } catch {
                group.cancelAll()
                throw error
            }
            group.cancelAll()
        }
    }

    /// The `User-Agent` the tests send by default: they speak for the bridge, so its invariants are checked.
    static let bridgeAgent = "pushbridge/test"

    /// Sends one request and collects the whole answer. `userAgent` nil sends none (a client other than the bridge).
    func send(
        _ method: HTTPMethod, _ path: String, headers: [(String, String)] = [], body: String? = nil,
        userAgent: String? = SandboxHarness.bridgeAgent, contentType: String? = "application/json"
    ) async throws -> Reply {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = method
        if let contentType { request.headers.add(name: "Content-Type", value: contentType) }
        if let userAgent { request.headers.add(name: "User-Agent", value: userAgent) }
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body { request.body = .bytes(ByteBuffer(string: body)) }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        let bytes = try await response.body.collect(upTo: 1 << 24)
        return Reply(status: Int(response.status.code), headers: response.headers, body: String(buffer: bytes))
    }

    /// Decodes an inspection/control JSON answer.
    func get<T: Decodable>(_ path: String, as type: T.Type) async throws -> T {
        let reply = try await send(.GET, path)
        guard reply.status == 200 else { throw HarnessError.unexpectedStatus(reply.status, reply.body) }
        return try Self.decoder.decode(T.self, from: Data(reply.body.utf8))
    }

    /// Adds a fault from a JSON body; returns its id.
    @discardableResult
    func addFault(_ json: String) async throws -> String {
        let reply = try await send(.POST, "/_sandbox/faults", body: json)
        guard reply.status == 201, let id = reply.json?["id"] as? String else {
            throw HarnessError.unexpectedStatus(reply.status, reply.body)
        }
        return id
    }

    static var decoder: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let text = try decoder.singleValueContainer().decode(String.self)
            guard let date = try? Date(text, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true)) else {
                throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not an ISO 8601 time with milliseconds: \(text)"))
            }
            return date
        }
        return decoder
    }
}

/// A collected HTTP answer.
struct Reply: Sendable {
    var status: Int
    var headers: HTTPHeaders
    var body: String

    var clientState: String? { headers.first(name: "X-Client-State") }

    var json: [String: Any]? {
        (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any]
    }
}

/// Tests stop servers by cancelling them, which Hummingbird reports at error level; keep the output readable.
let testLogger: Logger = {
    var logger = Logger(label: "me-sandbox-test")
    logger.logLevel = .critical
    return logger
}()

enum HarnessError: Error {
    case serverDidNotStart
    case unexpectedStatus(Int, String)
}

/// Decodes the payload part of a JWT-shaped string.
func jwtPayload(_ token: String) -> [String: Any]? {
    let parts = token.split(separator: ".", omittingEmptySubsequences: false)
    guard parts.count == 3 else { return nil }
    var base64 = parts[1].replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
    while base64.count % 4 != 0 { base64 += "=" }
    guard let data = Data(base64Encoded: base64) else { return nil }
    return (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
}
