import Bridge
import Foundation
import HTTPTypes
import Hummingbird
import Logging

/// Takes `X-Request-Id` (or makes one), echoes it, puts it in the request's log metadata, and counts
/// the request and its latency by route pattern and status (never by concrete path: that would hold device ids).
struct ObservabilityMiddleware<Context: RequestContext>: RouterMiddleware {
    let metrics: BridgeMetrics
    static var requestIdField: HTTPField.Name { HTTPField.Name("X-Request-Id")! }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        let given = request.headers[Self.requestIdField].flatMap { id in
            id.count <= 128 && id.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "-_.:".contains($0)) } ? id : nil
        }
        let requestId = given ?? UUID().uuidString.lowercased()
        context.logger[metadataKey: "requestId"] = "\(requestId)"
        let started = ContinuousClock.now
        var response = try await next(request, context)
        response.headers[Self.requestIdField] = requestId
        let route = context.endpointPath ?? "unmatched"
        metrics.apiRequest(route: route, method: request.method.rawValue, status: Int(response.status.code))
        metrics.apiLatency(route: route, method: request.method.rawValue, ContinuousClock.now - started)
        context.logger.debug("request", metadata: ["method": "\(request.method)", "route": "\(route)", "status": "\(response.status.code)"])
        return response
    }
}
