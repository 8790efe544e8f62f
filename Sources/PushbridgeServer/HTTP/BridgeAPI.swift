import Foundation
import HTTPTypes
import Hummingbird
import Bridge
import Logging
import PushTokens
import Storage
import Workflow

/// The public HTTP API of the contract. Handlers only translate HTTP into store calls and back.
struct BridgeAPI: Sendable {
    let config: BridgeConfiguration
    let store: any DeviceStore
    let parsing: RequestParsing
    let auth: Authenticator
    /// Called after an intent is committed, so the engine starts on it at once.
    let wake: @Sendable () -> Void
    let readiness: Readiness
    let metrics: BridgeMetrics
    let draining: @Sendable () -> Bool
    /// Prometheus text for `/metrics`, after the gauges were refreshed from storage.
    let scrape: @Sendable () async throws -> String

    init(
        config: BridgeConfiguration, store: any DeviceStore, registry: ProviderRegistry, wake: @escaping @Sendable () -> Void,
        readiness: Readiness, metrics: BridgeMetrics, draining: @escaping @Sendable () -> Bool, scrape: @escaping @Sendable () async throws -> String
    ) {
        self.metrics = metrics
        self.draining = draining
        self.scrape = scrape
        self.config = config
        self.store = store
        self.parsing = RequestParsing(registry: registry)
        self.auth = Authenticator(apps: config.apps)
        self.wake = wake
        self.readiness = readiness
    }

    func register(on router: Router<BasicRequestContext>) {
        let device = "/v1/apps/:code/devices/:deviceId"
        router.put(RouterPath(device)) { request, context in
            let (app, key) = try self.target(request, context)
            let body = try await JSONInput.body(request)
            let start = try self.parsing.start(Members(body), app: app)
            return try await self.accept(.start(start), key: key, app: app)
        }
        router.get(RouterPath(device)) { request, context in
            let (_, key) = try self.target(request, context)
            guard let status = try await self.store.status(of: key) else { throw Self.deviceNotFound(key) }
            return try Self.json(status, status: .ok)
        }
        router.delete(RouterPath(device)) { request, context in
            let (app, key) = try self.target(request, context)
            try await JSONInput.drain(request)
            return try await self.accept(.forget, key: key, app: app)
        }
        router.put(RouterPath(device + "/push-token")) { request, context in
            let (app, key) = try self.target(request, context)
            let body = Members(try await JSONInput.body(request))
            let descriptor = try self.parsing.provider(body)
            let token = try self.parsing.token(body, provider: descriptor.id, required: true)!
            return try await self.accept(.setToken(token), key: key, app: app)
        }
        router.delete(RouterPath(device + "/push-token")) { request, context in
            let (app, key) = try self.target(request, context)
            try await JSONInput.drain(request)
            return try await self.accept(.removeToken, key: key, app: app)
        }
        router.put(RouterPath(device + "/contact")) { request, context in
            let (app, key) = try self.target(request, context)
            let body = try await JSONInput.body(request)
            switch try self.parsing.contact(Members(body), app: app) {
            case .identified(let fieldId, let value)?: return try await self.accept(.login(fieldId: fieldId, value: value), key: key, app: app)
            case .openId(let fieldId, let token)?: return try await self.accept(.openIdLogin(fieldId: fieldId, token: token), key: key, app: app)
            case .anonymous?, nil: throw Problem.invalid("fieldValue", "fieldValue is required.")
            }
        }
        router.delete(RouterPath(device + "/contact")) { request, context in
            let (app, key) = try self.target(request, context)
            try await JSONInput.drain(request)
            return try await self.accept(.logout, key: key, app: app)
        }
        router.post(RouterPath(device + "/events")) { request, context in
            let (app, key) = try self.target(request, context)
            let body = try await JSONInput.body(request)
            let events = try self.parsing.events(body, now: Date())
            return try await self.accept(.events(events), key: key, app: app)
        }
        router.get("/v1/apps/:code/devices") { request, context in
            let app = try self.app(request, context)
            let query = request.uri.queryParameters
            let state = query["state"].map(String.init)
            if let state, DeviceStateName(rawValue: state) == nil {
                throw Problem.invalid("state", "state must be one of \(DeviceStateName.allCases.map(\.rawValue).joined(separator: ", ")).")
            }
            var limit = 100
            if let raw = query["limit"] {
                guard let n = Int(String(raw)), (1...1000).contains(n) else { throw Problem.invalid("limit", "limit must be a whole number from 1 to 1000.") }
                limit = n
            }
            let cursor = query["cursor"].map(String.init)
            if let cursor, !ListCursor.isValid(cursor) {
                throw Problem.invalid("cursor", "cursor must be a nextCursor value from an earlier page.")
            }
            let page = try await self.store.list(app: app.code, state: state, limit: limit, after: cursor)
            return try Self.json(DevicePageBody(devices: page.devices, nextCursor: page.nextCursor), status: .ok)
        }
        router.post("/v1/tokens/normalize") { request, context in
            try self.auth.authorize(request, appCode: nil)
            let body = Members(try await JSONInput.body(request))
            let descriptor = try self.parsing.provider(body)
            let token = try self.parsing.token(body, provider: descriptor.id, required: true)!
            return try Self.json(NormalizeBody(provider: token.provider, platform: token.platform, pushToken: token.pushToken, tokenHash: token.tokenHash), status: .ok)
        }
        router.get("/health") { _, _ in
            try Self.json(["status": "ok"], status: .ok)
        }
        router.get("/ready") { _, _ in
            let report = await self.readiness.check(store: self.store)
            return try Self.json(report, status: report.ready ? .ok : .serviceUnavailable)
        }
        router.get("/v1/apps/:code/stats") { request, context in
            let app = try self.app(request, context)
            let overview = try await self.store.overview(app: app.code, failures: 20)
            let counts = overview.apps[app.code] ?? .init()
            return try Self.json(AppStatsBody(appCode: app.code, devices: counts.total, byState: counts.byState, byProvider: counts.byProvider, queuedIntents: counts.queuedIntents, recentFailures: overview.recentFailures), status: .ok)
        }
        router.get("/metrics") { _, _ in
            let text = try await self.scrape()
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: text)))
        }
        router.get("/openapi.yaml") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/yaml"], body: .init(byteBuffer: ByteBuffer(string: OpenAPIDocument.text)))
        }
        MethodNotAllowed.register(on: router, paths: [
            device: [.get, .put, .delete], device + "/push-token": [.put, .delete], device + "/contact": [.put, .delete],
            device + "/events": [.post], "/v1/apps/:code/devices": [.get], "/v1/tokens/normalize": [.post],
            "/health": [.get], "/ready": [.get], "/openapi.yaml": [.get], "/metrics": [.get], "/v1/apps/:code/stats": [.get],
        ])
    }

    // MARK: helpers

    private func app(_ request: Request, _ context: BasicRequestContext) throws -> BridgeConfiguration.App {
        let code = Self.decoded(try context.parameters.require("code"))
        guard let app = config.app(code) else {
            throw Problem(.notFound, "unknown-app", "Unknown app", detail: "No app with code '\(code.prefix(64))' is configured.")
        }
        try auth.authorize(request, appCode: app.code)
        return app
    }

    private func target(_ request: Request, _ context: BasicRequestContext) throws -> (BridgeConfiguration.App, DeviceKey) {
        let app = try self.app(request, context)
        let deviceId = Self.decoded(try context.parameters.require("deviceId"))
        guard RequestParsing.validDeviceId(deviceId) else {
            throw Problem(.badRequest, "invalid-device-id", "Invalid device id", detail: "A device id is 1 to 128 characters of A-Z, a-z, 0-9, '.', '_', ':' or '-'.")
        }
        return (app, DeviceKey(appCode: app.code, deviceId: deviceId))
    }

    private func accept(_ write: DeviceWrite, key: DeviceKey, app: BridgeConfiguration.App) async throws -> Response {
        if draining() {
            var p = Problem(.serviceUnavailable, "shutting-down", "Shutting down", detail: "This instance is shutting down; nothing was stored. Send the request again (to another instance).")
            p.headers[.retryAfter] = "1"
            throw p
        }
        let limits = QueueLimits(maxQueuedIntents: config.limits.maxQueuedIntents, maxQueuedIntentsPerApp: config.limits.maxQueuedIntentsPerApp)
        let result = try await store.accept(write, for: key, policy: app.policy(eventsAPIVersion: config.emarsys.eventsAPIVersion), limits: limits, newClientId: UUID().uuidString.lowercased(), now: Date())
        switch result {
        case .accepted(let status):
            wake()
            return try Self.json(status, status: .accepted)
        case .deduplicated(let status):
            metrics.meCall(endpoint: Self.endpoint(of: write), outcome: "deduplicated")
            return try Self.json(status, status: .ok)
        case .unknownDevice:
            throw Self.deviceNotFound(key)
        case .queueFull(let scope):
            var p = Problem(.tooManyRequests, "queue-full", "Queue full", detail: "The \(scope == "app" ? "app's" : "bridge's") queue of intents is at its bound; nothing was stored. Try again later.")
            p.headers[.retryAfter] = "5"
            throw p
        }
    }

    /// The ME call a deduplicated write saved, for the metrics.
    static func endpoint(of write: DeviceWrite) -> String {
        switch write {
        case .setToken: "push_token_put"
        case .removeToken: "push_token_delete"
        case .login, .openIdLogin: "contact"
        case .logout: "contact_anonymous"
        default: "other"
        }
    }

    /// Path parameters as the client meant them: `a%3Ab` (what encodeURIComponent makes of `a:b`) is `a:b`.
    static func decoded(_ parameter: String) -> String {
        parameter.removingPercentEncoding ?? parameter
    }

    static func deviceNotFound(_ key: DeviceKey) -> Problem {
        Problem(.notFound, "unknown-device", "Unknown device", detail: "Device '\(key.deviceId)' is not known for app \(key.appCode); PUT the device or its push token first.")
    }

    /// A device status, written without `JSONEncoder` (the same bytes; see `DeviceStatus.jsonBytes`).
    static func json(_ value: DeviceStatus, status: HTTPResponse.Status) throws -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: value.jsonBytes())))
    }

    static func json<T: Encodable>(_ value: T, status: HTTPResponse.Status) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = try encoder.encode(value)
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}

struct DevicePageBody: Encodable {
    var devices: [DeviceStatus]
    var nextCursor: String?
    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(devices, forKey: .devices)
        try c.encode(nextCursor, forKey: .nextCursor)
    }
    enum CodingKeys: String, CodingKey { case devices, nextCursor }
}

struct AppStatsBody: Encodable {
    var appCode: String
    var devices: Int
    var byState: [String: Int]
    var byProvider: [String: Int]
    var queuedIntents: Int
    var recentFailures: [StoreOverview.Failure]
}

struct NormalizeBody: Encodable {
    var provider: String
    var platform: String
    var pushToken: String
    var tokenHash: String
}

/// 405 with `Allow` for a known path and a method it does not take, as problem+json.
enum MethodNotAllowed {
    static let all: [HTTPRequest.Method] = [.get, .put, .post, .delete, .patch, .head, .options, .trace]

    static func register(on router: Router<BasicRequestContext>, paths: [String: [HTTPRequest.Method]]) {
        for (path, allowed) in paths {
            let allow = allowed.map(\.rawValue).joined(separator: ", ")
            for method in all where !allowed.contains(method) {
                router.on(RouterPath(path), method: method) { request, _ -> Response in
                    var p = Problem(.methodNotAllowed, "method-not-allowed", "Method not allowed", detail: "\(request.method) is not allowed here; use \(allow).")
                    p.headers[.allow] = allow
                    throw p
                }
            }
        }
    }
}
