import Foundation
import HTTPTypes
import Hummingbird

/// The sandbox's routes on two router groups: the ME routes, which a page in a browser may call (CORS), and the
/// `/_sandbox/` inspection and control routes, which it may not (they show push tokens and contact values, and
/// change the sandbox). Every path below the prefix answers, and every request but the inspection calls is logged.
///
/// Hummingbird's router neither falls back from a path it knows with a method it does not (an `OPTIONS` preflight on
/// `/client`) nor backtracks from a path that leaves the known ones part way (`/v3/apps/X/inbox`): both get its own
/// empty 404, before any middleware of the group runs. So the table keeps the methods served per path, and `finish`
/// gives every other method of those paths, every path on the way to them, and `**` below each of those, the
/// sandbox's own answer: CORS for a preflight, a JSON 404 naming the request otherwise, logged either way.
final class SandboxRoutes<Context: RequestContext> {
    /// The ME routes, and what is unrouted outside `/_sandbox/`: with CORS.
    let browser: RouterGroup<Context>
    /// The `/_sandbox/` routes: without.
    let control: RouterGroup<Context>
    let prefix: String
    private var served: [(path: String, methods: Set<HTTPRequest.Method>)] = []

    static var methods: [HTTPRequest.Method] { [.get, .post, .put, .delete, .patch, .head, .options] }
    static var controlBase: String { "/_sandbox" }

    init(router: Router<Context>, prefix: String) {
        self.browser = router.group()
        self.control = router.group()
        self.prefix = prefix
    }

    private func group(for full: String) -> RouterGroup<Context> {
        full.hasPrefix(prefix + Self.controlBase) ? control : browser
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
        group(for: full).on(RouterPath(full), method: method) { request, context in try await handler(request, context) }
    }

    /// Answers with `handler` the methods no route serves on the known paths, every path on the way to them, and
    /// everything below each of those.
    func finish(unrouted handler: @escaping @Sendable (Request, Context) async throws -> Response) {
        var methodsByPath: [String: Set<HTTPRequest.Method>] = [:]
        var order: [String] = []
        func note(_ path: String, _ methods: Set<HTTPRequest.Method>) {
            if methodsByPath[path] == nil { order.append(path) }
            methodsByPath[path, default: []].formUnion(methods)
        }
        for (path, methods) in served {
            note(path, methods)
            // Each path on the way: `/v3`, `/v3/apps`, `/v3/apps/:code`, ... below the prefix.
            let parts = path.dropFirst(prefix.count).split(separator: "/")
            for count in 1..<max(1, parts.count) {
                note(prefix + "/" + parts.prefix(count).joined(separator: "/"), [])
            }
        }
        let answer: @Sendable (Request, Context) async throws -> Response = { request, context in try await handler(request, context) }
        for path in order {
            let group = group(for: path)
            for method in Self.methods where !(methodsByPath[path] ?? []).contains(method) {
                group.on(RouterPath(path), method: method, use: answer)
            }
            // Not beside a parameter (`/v3/apps/:code`): it takes every segment there (and Hummingbird's router
            // refuses the pair); the `**` below the parameter answers instead.
            let belowParameter = order.contains { $0.hasPrefix(path + "/:") && !$0.dropFirst(path.count + 2).contains("/") }
            if !belowParameter {
                for method in Self.methods { group.on(RouterPath(path + "/**"), method: method, use: answer) }
            }
        }
        for method in Self.methods { browser.on(RouterPath(prefix + "/**"), method: method, use: answer) }
    }
}

extension MESandbox {
    func registerRoutes<Context: RequestContext>(on router: Router<Context>, prefix: String) {
        let routes = SandboxRoutes(router: router, prefix: Self.normalizedPrefix(prefix))
        // Outermost: preflights are answered by the CORS middleware below it and never reach a handler.
        routes.browser.add(middleware: PreflightLog<Context>(sandbox: self, prefix: routes.prefix))
        routes.control.add(middleware: PreflightLog<Context>(sandbox: self, prefix: routes.prefix))
        let origins = configuration.allowedOrigins
        if !origins.isEmpty {
            let anyOrigin = origins.contains("*")
            if !anyOrigin { routes.browser.add(middleware: OriginFilter<Context>(allowed: Set(origins))) }
            routes.browser.add(middleware: ExposeHeaders<Context>(names: Self.exposedHeaders))
            routes.browser.add(middleware: CORSMiddleware<Context>(
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
            // A preflight gets here only when CORS did not answer it: CORS off, an origin not allowed, or an
            // inspection route, which pages may not call. Every OPTIONS is logged by `PreflightLog`.
            let origin = request.headers[.origin] ?? request.headers[.xSandboxRefusedOrigin]
            if request.method == .options, origin != nil {
                return SandboxHTTP.error(.forbidden, path.hasPrefix(SandboxRoutes<Context>.controlBase)
                    ? "CORS preflight not answered: the inspection and control routes are not open to pages"
                    : "CORS preflight not answered: the origin is not allowed (emarsys.sandboxAllowedOrigins, "
                        + "pushbridge sandbox --allow-origins)")
            }
            let status = HTTPResponse.Status.notFound
            if request.method != .options {
                let unrouted = Self.unrouted(request, path: path)
                let now = Date()
                self.state.withLock { $0.logUnrouted(unrouted, status: status.code, at: now) }
            }
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
            sdkVersion: request.headers[.xEmarsysSDKVersion], origin: request.headers[.origin] ?? request.headers[.xSandboxRefusedOrigin])
    }
}

/// Logs every `OPTIONS` request below the prefix with the answer it got (a CORS preflight's 204; a 403 when CORS is
/// off, the origin is not allowed or the route is an inspection route; a 404 without an `Origin`).
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
/// the origin or name a fixed list in code. The origin moves to `X-Sandbox-Refused-Origin`, so the log still shows it.
struct OriginFilter<Context: RequestContext>: RouterMiddleware {
    let allowed: Set<String>

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let origin = request.headers[.origin], !allowed.contains(origin) else { return try await next(request, context) }
        var head = request.head
        head.headerFields[.origin] = nil
        head.headerFields[.xSandboxRefusedOrigin] = origin
        return try await next(Request(head: head, body: request.body), context)
    }
}
