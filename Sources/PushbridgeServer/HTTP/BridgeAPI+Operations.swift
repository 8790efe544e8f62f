import Foundation
import HTTPTypes
import Hummingbird
import Storage
import Workflow

/// The token route and the operators' routes: normalisation, readiness, statistics, metrics, the OpenAPI document.
extension BridgeAPI {
    /// `POST /v1/tokens/normalize`: what a plugin makes of a token, without storing anything.
    func normalize(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        try auth.authorize(request, appCode: nil)
        let body = Members(try await JSONInput.body(request))
        let descriptor = try parsing.provider(body)
        let token = try parsing.token(body, provider: descriptor.id, required: true)!
        return try Self.json(NormalizeBody(provider: token.provider, platform: token.platform, pushToken: token.pushToken, tokenHash: token.tokenHash), status: .ok)
    }

    /// `POST /v1/apps/{code}/tokens/invalidate`: a backend's send met a dead token (FCM `UNREGISTERED`, APNs 410).
    /// The device of the app that holds it (sent or queued) gets it removed at ME, and ends `unregistered` when it
    /// was its newest token; 202 with that device, or 200 deduplicated when no device holds it. The token is named as a device write names it
    /// (`provider` and `token`) or by its `tokenHash`; `reason` (at most 256 characters) is checked and kept out of
    /// the logs, as it may quote the token.
    func invalidate(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        let app = try self.app(request, context)
        let body = Members(try await JSONInput.body(request))
        let tokenHash: String
        if let hash = try body.string("tokenHash") {
            // A member sent as null is absent, as everywhere in the API.
            guard [body.object["token"], body.object["provider"]].allSatisfy({ $0 == nil || $0 == .null }) else {
                throw Problem.invalid("tokenHash", "Name the token by tokenHash or by provider and token, not both.")
            }
            guard Self.isTokenHash(hash) else { throw Problem.invalid("tokenHash", "tokenHash must be 64 lower-case hexadecimal characters.") }
            tokenHash = hash
        } else {
            let descriptor = try parsing.provider(body)
            tokenHash = try parsing.token(body, provider: descriptor.id, required: true)!.tokenHash
        }
        // The contract counts characters (a character may take many bytes): no byte bound but the body's.
        if let reason = try body.string("reason", maxLength: JSONInput.maxBodyBytes), reason.count > 256 {
            throw Problem.invalid("reason", "reason may hold at most 256 characters.")
        }
        try refuseWhileDraining()
        let now = Date()
        let devices = try await storage("invalidate") { [store] in try await store.invalidate(tokenHash: tokenHash, app: app.code, now: now) }
        guard !devices.isEmpty else { return try Self.json(InvalidateBody(devices: [], deduplicated: true), status: .ok) }
        wake()
        metrics.tokenInvalidated()
        logger.info("token reported dead; its device releases it", metadata: [
            "app": "\(app.code)", "tokenHash": "\(tokenHash.prefix(12))", "devices": "\(devices.map(\.registration.key.deviceId).joined(separator: ","))",
        ])
        if let history {
            let requestId = Self.requestId(context)
            for device in devices {
                history(HistoryRecord(key: device.registration.key, at: now, entry: .intent(name: "invalidate", deduplicated: false, requestId: requestId)))
            }
        }
        return try Self.json(InvalidateBody(devices: devices.map { DeviceStatus($0) }, deduplicated: false), status: .accepted)
    }

    /// A token hash as the status shows it: SHA-256 in 64 lower-case hexadecimal characters.
    static func isTokenHash(_ text: String) -> Bool {
        text.utf8.count == 64 && text.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }

    /// `GET /v1/apps/{code}/stats`: the app's devices by state and provider, its queue and recent failures.
    func stats(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        let app = try self.app(request, context)
        let overview = try await storage("overview") { [store, app] in try await store.overview(app: app.code, failures: 20) }
        let counts = overview.apps[app.code] ?? .init()
        return try Self.json(AppStatsBody(appCode: app.code, devices: counts.total, byState: counts.byState, byProvider: counts.byProvider, queuedIntents: counts.queuedIntents, recentFailures: overview.recentFailures), status: .ok)
    }

    /// `GET /ready`: 200 when storage answers and the workers run, else 503 naming the part.
    func ready() async throws -> Response {
        let report = await readiness.check(store: store)
        return try Self.json(report, status: report.ready ? .ok : .serviceUnavailable)
    }

    /// `GET /metrics`: Prometheus text, the gauges refreshed from storage first.
    func metricsText() async throws -> Response {
        let text = try await scrape()
        return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    /// `GET /openapi.yaml`: the contract as OpenAPI 3.1.
    static func openAPI() -> Response {
        Response(status: .ok, headers: [.contentType: "application/yaml"], body: .init(byteBuffer: ByteBuffer(string: OpenAPIDocument.text)))
    }
}
