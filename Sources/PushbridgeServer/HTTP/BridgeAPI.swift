import Bridge
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import PushTokens
import PushbridgeConfig
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
    /// Where failed storage operations are reported (readiness reads it).
    let health: StorageHealth
    let logger: Logger
    let draining: @Sendable () -> Bool
    /// Prometheus text for `/metrics`, after the gauges were refreshed from storage.
    let scrape: @Sendable () async throws -> String
    /// Where every accepted and deduplicated write is told, for the device's history (nil: not kept).
    var history: (@Sendable (HistoryRecord) -> Void)?
    /// Where a deduplicated write is told: the device was seen then (`lastSeenAt`; a stored write sets it itself).
    var seen: (@Sendable (DeviceKey, Date) -> Void)?

    init(
        config: BridgeConfiguration, store: any DeviceStore, registry: ProviderRegistry, wake: @escaping @Sendable () -> Void,
        readiness: Readiness, metrics: BridgeMetrics, health: StorageHealth, logger: Logger,
        draining: @escaping @Sendable () -> Bool, scrape: @escaping @Sendable () async throws -> String
    ) {
        self.metrics = metrics
        self.health = health
        self.logger = logger
        self.draining = draining
        self.scrape = scrape
        self.config = config
        self.store = store
        self.parsing = RequestParsing(registry: registry)
        self.auth = Authenticator(apps: config.apps)
        self.wake = wake
        self.readiness = readiness
    }

    /// One route of the API: the router and the 405 table are both built from `routes`.
    struct Route: Sendable {
        var method: HTTPRequest.Method
        var path: String
        var handler: @Sendable (Request, BasicRequestContext) async throws -> Response
    }

    static let device = "/v1/apps/:code/devices/:deviceId"

    /// Every route of the API, by resource: devices (`BridgeAPI+Devices.swift`), tokens and operations
    /// (`BridgeAPI+Operations.swift`), many devices at once (`BridgeAPI+Fleet.swift`), people (`BridgeAPI+Contacts.swift`).
    var routes: [Route] {
        let device = Self.device
        return [
            Route(method: .put, path: device, handler: { try await self.start($0, $1) }),
            Route(method: .get, path: device, handler: { try await self.status($0, $1) }),
            Route(method: .delete, path: device, handler: { try await self.forget($0, $1) }),
            Route(method: .put, path: device + "/push-token", handler: { try await self.setToken($0, $1) }),
            Route(method: .delete, path: device + "/push-token", handler: { try await self.removeToken($0, $1) }),
            Route(method: .put, path: device + "/contact", handler: { try await self.login($0, $1) }),
            Route(method: .delete, path: device + "/contact", handler: { try await self.logout($0, $1) }),
            Route(method: .post, path: device + "/events", handler: { try await self.events($0, $1) }),
            Route(method: .get, path: device + "/history", handler: { try await self.history($0, $1) }),
            Route(method: .get, path: "/v1/apps/:code/devices", handler: { try await self.list($0, $1) }),
            Route(method: .post, path: "/v1/apps/:code/devices/retry", handler: { try await self.retryDevices($0, $1) }),
            Route(method: .post, path: "/v1/apps/:code/contacts/devices", handler: { try await self.contactDevices($0, $1) }),
            Route(method: .post, path: "/v1/apps/:code/contacts/logout", handler: { try await self.contactLogout($0, $1) }),
            Route(method: .post, path: "/v1/apps/:code/contacts/erase", handler: { try await self.contactErase($0, $1) }),
            Route(method: .get, path: "/v1/apps/:code/stats", handler: { try await self.stats($0, $1) }),
            Route(method: .post, path: "/v1/apps/:code/tokens/invalidate", handler: { try await self.invalidate($0, $1) }),
            Route(method: .post, path: "/v1/tokens/normalize", handler: { try await self.normalize($0, $1) }),
            Route(method: .get, path: "/health", handler: { _, _ in try Self.json(["status": "ok"], status: .ok) }),
            Route(method: .get, path: "/ready", handler: { _, _ in try await self.ready() }),
            Route(method: .get, path: "/openapi.yaml", handler: { _, _ in Self.openAPI() }),
        ] + (config.metrics.port == nil ? [Route(method: .get, path: "/metrics", handler: { _, _ in try await self.metricsText() })] : [])
    }

    /// A route's `route` label, as the router names the matched endpoint (`/v1/apps/{code}/devices/{deviceId}`).
    static func label(of path: String) -> String { RouterPath(path).description }

    /// The status a route answers when all goes well (the label its requests are counted under from the start).
    static func usualStatus(_ route: Route) -> Int {
        route.method == .get || route.path.hasSuffix("/normalize") || route.path.hasSuffix("/contacts/devices") ? 200 : 202
    }

    func register(on router: Router<BasicRequestContext>) {
        let routes = self.routes
        for route in routes {
            // Every write under /v1/apps/ takes an Idempotency-Key (BridgeAPI+Idempotency.swift).
            let write = route.method != .get && route.path.hasPrefix("/v1/apps/")
            router.on(RouterPath(route.path), method: route.method, use: write ? idempotent(route.handler) : route.handler)
        }
        MethodNotAllowed.register(on: router, paths: Dictionary(grouping: routes, by: \.path).mapValues { $0.map(\.method) })
    }

    // MARK: helpers

    func app(_ request: Request, _ context: BasicRequestContext) throws -> BridgeConfiguration.App {
        let code = Self.decoded(try context.parameters.require("code"))
        guard let app = config.app(code) else {
            throw Problem(.notFound, "unknown-app", "Unknown app", detail: "No app with code '\(code.prefix(64))' is configured.")
        }
        try auth.authorize(request, appCode: app.code)
        return app
    }

    func target(_ request: Request, _ context: BasicRequestContext) throws -> (BridgeConfiguration.App, DeviceKey) {
        let app = try self.app(request, context)
        let deviceId = Self.decoded(try context.parameters.require("deviceId"))
        guard RequestParsing.validDeviceId(deviceId) else {
            throw Problem(.badRequest, "invalid-device-id", "Invalid device id", detail: "A device id is 1 to 128 characters of A-Z, a-z, 0-9, '.', '_', ':' or '-'.")
        }
        return (app, DeviceKey(appCode: app.code, deviceId: deviceId))
    }

    /// A write that arrives while the instance drains is refused before it is stored: 503 with `Retry-After`.
    func refuseWhileDraining() throws {
        if draining() {
            var p = Problem(.serviceUnavailable, "shutting-down", "Shutting down", detail: "This instance is shutting down; nothing was stored. Send the request again (to another instance).")
            p.headers[.retryAfter] = "1"
            throw p
        }
    }

    func accept(_ write: DeviceWrite, key: DeviceKey, app: BridgeConfiguration.App, context: BasicRequestContext? = nil) async throws -> Response {
        switch try await storeWrite(write, key: key, app: app, context: context) {
        case .accepted(let device):
            return try Self.json(DeviceStatus(device, deduplicated: false), status: .accepted)
        case .deduplicated(let device):
            return try Self.json(DeviceStatus(device, deduplicated: true), status: .ok)
        case .unknownDevice:
            throw Self.deviceNotFound(key)
        case .queueFull(let scope):
            throw Self.queueFull(scope: scope)
        }
    }

    /// Stores one write (refused while draining) and tells what follows from it: the history, the engine (woken for a
    /// stored intent) and, for a deduplicated one, the sighting (`lastSeenAt`, which the returned device shows).
    ///
    /// `contact`: only while the device's newest requested contact is that one (`DeviceStore.accept(_:for:ifContact:...)`);
    /// the caller has refused a draining instance itself.
    func storeWrite(
        _ write: DeviceWrite, key: DeviceKey, app: BridgeConfiguration.App, context: BasicRequestContext?, contact: (fieldId: Int, value: String)? = nil
    ) async throws -> AcceptResult {
        if contact == nil { try refuseWhileDraining() }
        let limits = QueueLimits(maxQueuedIntents: config.limits.maxQueuedIntents, maxQueuedIntentsPerApp: config.limits.maxQueuedIntentsPerApp)
        let policy = app.policy(eventsAPIVersion: config.emarsys.eventsAPIVersion)
        let now = Date()
        let result = try await storage("accept") { [store] in
            if let contact {
                return try await store.accept(write, for: key, ifContact: contact.fieldId, value: contact.value, policy: policy, limits: limits, now: now)
            }
            return try await store.accept(write, for: key, policy: policy, limits: limits, newClientId: UUID().uuidString.lowercased(), now: now)
        }
        if let history, let deduplicated = result.deduplicated {
            history(HistoryRecord(key: key, at: now, entry: .intent(name: Self.intentName(write), deduplicated: deduplicated, requestId: Self.requestId(context))))
        }
        switch result {
        case .accepted:
            wake()
            return result
        case .deduplicated(var device):
            metrics.meCall(endpoint: Self.endpoint(of: write), outcome: "deduplicated")
            // In the store's precision (whole milliseconds, rounded down), so the answer shows what a read will.
            let seenAt = Date(timeIntervalSince1970: (now.timeIntervalSince1970 * 1000).rounded(.down) / 1000)
            seen?(key, seenAt)
            device.registration.lastSeenAt = max(device.registration.lastSeenAt, seenAt)
            return .deduplicated(device)
        case .unknownDevice, .queueFull:
            return result
        }
    }

    /// 429 for a write over the queue bound (`scope`: `app` or `global`); nothing of that write was stored.
    static func queueFull(scope: String) -> Problem {
        var p = Problem(.tooManyRequests, "queue-full", "Queue full", detail: "The \(scope == "app" ? "app's" : "bridge's") queue of intents is at its bound; nothing was stored. Try again later.")
        p.headers[.retryAfter] = "5"
        return p
    }

    /// Runs one store operation for a request. It waits at most `storage.timeoutMs`; a failure or no answer in time
    /// is 503 `storage-unavailable` with `Retry-After`, never 500: a database that is down, restarting or out of
    /// connections, a disk that is full, a file that is read-only. Each store operation is one transaction, so a
    /// write that failed on SQLite stored nothing; one that timed out, or failed on PostgreSQL (the connection may
    /// have died after the COMMIT), may still be stored, and sending it again is safe. Such a write wakes the engine all
    /// the same, when the operation fails and again when one given up on ends, so that work it may have queued is not
    /// left for the engine's next look (seconds away when it was idle).
    func storage<T: Sendable>(_ operation: String, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        do {
            return try await withStorageTimeout(.milliseconds(config.storageTimeoutMs), on: store, endedLate: wake, body)
        } catch {
            if store.mayStall { wake() }
            health.failed(operation, error)
            logger.error("storage failed; answering 503", metadata: ["operation": "\(operation)", "error": "\(storageErrorText(error))"])
            // On PostgreSQL a connection lost during COMMIT cannot tell whether it went through.
            throw Problem.storageUnavailable(mayBeStored: error is StorageTimeout || store.mayStall)
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

/// The answer to a dead-token report: the devices that held the token, and `deduplicated` when none did.
struct InvalidateBody: Encodable {
    var devices: [DeviceStatus]
    var deduplicated: Bool
    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(devices, forKey: .devices)
        if deduplicated { try c.encode(true, forKey: .deduplicated) }
    }
    enum CodingKeys: String, CodingKey { case devices, deduplicated }
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
        for (path, methods) in paths {
            // In a fixed order (GET, PUT, POST, DELETE, ...), whatever order the routes were listed in.
            let allowed = all.filter(methods.contains)
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
