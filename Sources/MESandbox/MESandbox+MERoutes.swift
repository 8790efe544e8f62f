import Foundation
import Hummingbird
import NIOCore
import Logging

/// The Mobile Engage endpoints: HTTP glue around `SandboxState.respond`.
extension MESandbox {
    func registerMERoutes<Context: RequestContext>(on routes: SandboxRoutes<Context>) {
        // The client service under app codes (`/v3/apps/`) and under web push domain codes (`/v3/domains/`,
        // what the later web SDK builds call, events included); one code names one client space whichever way it
        // is addressed.
        var table: [(String, HTTPRequest.Method, MERoute)] = []
        for space in ["apps", "domains"] {
            let client = "/v3/\(space)/:code/client"
            table += [
                (client, .post, .registerClient),
                (client + "/contact", .post, .linkContact),
                (client + "/contact-token", .post, .refreshContactToken),
                (client + "/push-token", .put, .setPushToken),
                (client + "/push-token", .delete, .deletePushToken),
                (client + "/events", .post, .events),
            ]
        }
        table.append(("/v4/apps/:code/client/events", .post, .events))
        let prefix = routes.prefix
        for (path, method, route) in table {
            routes.on(path, method) { request, context in
                try await self.serve(route, request: request, context: context, prefix: prefix)
            }
        }
    }

    private func serve<Context: RequestContext>(
        _ route: MERoute, request: Request, context: Context, prefix: String
    ) async throws -> Response {
        // In flight (I2) from here until the state decision below; `pending` covers the early exits.
        let clientId = request.headers[.xClientId]
        let checksInvariants = configuration.invariants == .all
            || SandboxConfiguration.isBridge(userAgent: request.headers[.userAgent])
        let overlapping = state.withLock { $0.enterRequest(clientId: clientId) }
        var pending = true
        defer {
            if pending { state.withLock { $0.leaveRequest(clientId: clientId) } }
        }

        var request = request
        let body: ByteBuffer
        do {
            body = try await request.collectBody(upTo: Self.maxBodySize)
        } catch {
            if overlapping, checksInvariants, let clientId, !clientId.isEmpty {
                // The body never reached the checks, but the overlap was seen: keep it.
                let violation = MERequest(
                    route: route, method: request.method.rawValue, path: Self.pathBelow(prefix: prefix, request.uri.path),
                    appCode: context.parameters.get("code") ?? "", anonymous: false, clientId: clientId, body: [])
                let finding = SandboxState.Finding(kind: .overlappingRequest,
                    detail: "another request of this client was still in flight when this one arrived")
                let now = Date()
                state.withLock { $0.record([finding], request: violation, clientId: clientId, at: now) }
            }
            let unrouted = Self.unrouted(request, path: Self.pathBelow(prefix: prefix, request.uri.path))
            let now = Date()
            state.withLock {
                $0.logUnrouted(unrouted, route: route, status: HTTPResponse.Status.contentTooLarge.code, invariantsChecked: checksInvariants, at: now)
            }
            return SandboxHTTP.error(.contentTooLarge, "request body larger than \(Self.maxBodySize) bytes")
        }
        let path = Self.pathBelow(prefix: prefix, request.uri.path)
        let headers = request.headers
        let meRequest = MERequest(
            route: route, method: request.method.rawValue, path: path,
            appCode: context.parameters.get("code") ?? "",
            anonymous: request.uri.queryParameters["anonymous"] == "true",
            clientId: clientId, requestOrder: headers[.xRequestOrder],
            clientState: headers[.xClientState], contactToken: headers[.xContactToken],
            sdkVersion: headers[.xEmarsysSDKVersion], sdkMode: headers[.xEmarsysSDKMode],
            body: Array(buffer: body), overlapping: overlapping, checksInvariants: checksInvariants,
            origin: headers[.origin] ?? headers[.xSandboxRefusedOrigin]
        )
        let environment = self.environment
        let answer = state.withLock { state in
            state.leaveRequest(clientId: clientId)
            return state.respond(to: meRequest, environment: environment)
        }
        pending = false
        logger.debug("ME request", metadata: [
            "me.route": "\(route.rawValue)", "me.client_id": "\(meRequest.clientId ?? "-")",
            "me.status": "\(answer.closeConnection ? 0 : answer.status.code)", "me.fault": "\(answer.faultId ?? "-")",
        ])

        if let latency = answer.latencyMs, latency > 0 {
            try await Task.sleep(for: .milliseconds(latency))
        }
        if answer.closeConnection {
            return try await dropResponse(context)
        }
        var responseHeaders = HTTPFields()
        if let clientState = answer.clientState { responseHeaders[.xClientState] = clientState }
        if let retryAfter = answer.retryAfter { responseHeaders[.retryAfter] = retryAfter }
        return SandboxHTTP.response(status: answer.status, body: answer.body, contentType: answer.contentType, headers: responseHeaders)
    }

    /// Ends the request without a proper answer (fault mode "close").
    ///
    /// With a `SandboxConnectionClosing` context the connection is closed before any byte is written: the client
    /// sees the connection closed with no response (AsyncHTTPClient: `HTTPClientError.remoteConnectionClosed`).
    /// Other contexts (e.g. `BasicRequestContext`) cannot reach the connection, so the sandbox starts a
    /// `502 Bad Gateway` with a chunked body and then throws, which makes Hummingbird close the connection
    /// mid-body: the client sees a 502 head and then a premature end of the body stream.
    private func dropResponse<Context: RequestContext>(_ context: Context) async throws -> Response {
        if let closer = context as? any SandboxConnectionClosing {
            await closer.closeConnection()
            throw SandboxConnectionDropped()
        }
        return Response(
            status: .badGateway, headers: [.contentType: "application/json"],
            body: ResponseBody { _ in throw SandboxConnectionDropped() }
        )
    }

    /// The request path with the sandbox prefix removed (what fault `path` filters match against).
    static func pathBelow(prefix: String, _ path: String) -> String {
        guard !prefix.isEmpty, path.hasPrefix(prefix) else { return path }
        return String(path.dropFirst(prefix.count))
    }

    /// "" stays ""; "sandbox/" becomes "/sandbox".
    static func normalizedPrefix(_ prefix: String) -> String {
        var trimmed = Substring(prefix)
        while trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
        guard !trimmed.isEmpty else { return "" }
        return trimmed.hasPrefix("/") ? String(trimmed) : "/" + trimmed
    }
}
