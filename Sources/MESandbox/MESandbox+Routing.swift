import Foundation
import HTTPTypes
import Hummingbird

/// The sandbox's routes on one router group: every path below the prefix answers, and every request is logged.
///
/// Hummingbird answers a path it knows with a method it does not (an `OPTIONS` preflight on `/client`, a `GET` on
/// it) with its own empty 404, before any middleware of the group runs. So the table keeps the methods served per
/// path, and `finish` gives every other method of those paths, and every other path below the prefix (`/**`), the
/// sandbox's own answer: CORS for preflights, a JSON 404 naming the request otherwise, logged either way.
final class SandboxRoutes<Context: RequestContext> {
    let group: RouterGroup<Context>
    let prefix: String
    private var served: [(path: String, methods: Set<HTTPRequest.Method>)] = []

    static var methods: [HTTPRequest.Method] { [.get, .post, .put, .delete, .patch, .head, .options] }

    init(router: Router<Context>, prefix: String) {
        self.group = router.group()
        self.prefix = prefix
    }

    /// Serves `method` on `prefix + path`.
    func on(
        _ path: String, _ method: HTTPRequest.Method,
        _ handler: @escaping @Sendable (Request, Context) async throws -> Response
    ) {
        let full = prefix + path
        if let index = served.firstIndex(where: { $0.path == full }) {
            served[index].methods.insert(method)
        } else {
            served.append((full, [method]))
        }
        group.on(RouterPath(full), method: method) { request, context in try await handler(request, context) }
    }

    /// Answers the methods no route serves on the known paths, and everything below the prefix, with `handler`.
    func finish(unrouted handler: @escaping @Sendable (Request, Context) async throws -> Response) {
        for (path, methods) in served {
            for method in Self.methods where !methods.contains(method) {
                group.on(RouterPath(path), method: method) { request, context in try await handler(request, context) }
            }
        }
        for method in Self.methods {
            group.on(RouterPath(prefix + "/**"), method: method) { request, context in try await handler(request, context) }
        }
    }
}

extension MESandbox {
    func registerRoutes<Context: RequestContext>(on router: Router<Context>, prefix: String) {
        let routes = SandboxRoutes(router: router, prefix: Self.normalizedPrefix(prefix))
        // Outermost: preflights are answered by the CORS middleware below it and never reach a handler.
        routes.group.add(middleware: PreflightLog<Context>(sandbox: self, prefix: routes.prefix))
        let origins = configuration.allowedOrigins
        if !origins.isEmpty {
            let anyOrigin = origins.contains("*")
            if !anyOrigin { routes.group.add(middleware: OriginFilter<Context>(allowed: Set(origins))) }
            routes.group.add(middleware: ExposeHeaders<Context>(names: Self.exposedHeaders))
            routes.group.add(middleware: CORSMiddleware<Context>(
                allowOrigin: anyOrigin ? .all : .originBased,
                allowHeaders: [
                    .accept, .contentType, .origin, .xClientId, .xClientState, .xContactToken, .xRequestOrder,
                    .xEmarsysSDKVersion, .xEmarsysSDKMode,
                ],
                allowMethods: [.get, .post, .put, .delete, .options],
                exposedHeaders: Self.exposedHeaders,
                maxAge: .seconds(600)
            ))
        }
        registerMERoutes(on: routes)
        registerControlRoutes(on: routes)
        let prefix = routes.prefix
        routes.finish { request, _ in
            let path = Self.pathBelow(prefix: prefix, request.uri.path)
            // A preflight gets here only when CORS did not answer it (off, or the origin is not allowed); it is
            // logged by `PreflightLog`.
            if request.method == .options {
                return SandboxHTTP.error(.forbidden, "CORS preflight not answered: the origin is not allowed "
                    + "(emarsys.sandboxAllowedOrigins, pushbridge sandbox --allow-origins)")
            }
            let status = HTTPResponse.Status.notFound
            let unrouted = Self.unrouted(request, path: path)
            let now = Date()
            self.state.withLock { $0.logUnrouted(unrouted, status: status.code, at: now) }
            return SandboxHTTP.error(status, "no Mobile Engage endpoint answers \(request.method.rawValue) \(path) here; "
                + "the sandbox serves /v3/apps/{code}/client..., /v3/domains/{code}/client... and "
                + "/v3|v4/apps/{code}/client/events (see GET /_sandbox/requests)")
        }
    }

    /// What an SDK in a page must read from the answers.
    static let exposedHeaders = ["X-Client-State", "Retry-After", "X-Sandbox-Violation-Count"]

    static func unrouted(_ request: Request, path: String) -> UnroutedRequest {
        UnroutedRequest(
            method: request.method.rawValue, path: path, clientId: request.headers[.xClientId],
            requestOrder: request.headers[.xRequestOrder],
            carriesContactToken: !(request.headers[.xContactToken] ?? "").isEmpty,
            sdkVersion: request.headers[.xEmarsysSDKVersion], origin: request.headers[.origin])
    }
}

/// Logs every `OPTIONS` request below the prefix with the answer it got (a CORS preflight's 204, or the 404 when
/// CORS is off).
struct PreflightLog<Context: RequestContext>: RouterMiddleware {
    let sandbox: MESandbox
    let prefix: String

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard request.method == .options else { return try await next(request, context) }
        let response = try await next(request, context)
        let unrouted = MESandbox.unrouted(request, path: MESandbox.pathBelow(prefix: prefix, request.uri.path))
        let now = Date()
        sandbox.state.withLock { $0.logUnrouted(unrouted, status: response.status.code, at: now) }
        return response
    }
}

/// `Access-Control-Expose-Headers` on the answers a page may read (those with `Access-Control-Allow-Origin`):
/// Hummingbird's `CORSMiddleware` sends it on the preflight only, where browsers do not look for it, so without this a
/// page could not read `X-Client-State`.
struct ExposeHeaders<Context: RequestContext>: RouterMiddleware {
    let names: [String]

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response = try await next(request, context)
        if request.method != .options, response.headers[.accessControlAllowOrigin] != nil {
            response.headers[.accessControlExposeHeaders] = names.joined(separator: ", ")
        }
        return response
    }
}

/// With a list of allowed origins: a request from any other origin is served without CORS headers (the browser
/// then refuses it to the page), by hiding its `Origin` from Hummingbird's `CORSMiddleware`, which can only echo
/// the origin or name a fixed list in code.
struct OriginFilter<Context: RequestContext>: RouterMiddleware {
    let allowed: Set<String>

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let origin = request.headers[.origin], !allowed.contains(origin) else { return try await next(request, context) }
        var head = request.head
        head.headerFields[.origin] = nil
        return try await next(Request(head: head, body: request.body), context)
    }
}
