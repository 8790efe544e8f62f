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
