import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// An RFC 9457 problem document. Thrown by handlers; `ProblemMiddleware` writes it.
public struct Problem: Error, Sendable {
    public var status: HTTPResponse.Status
    /// The last part of the stable type URI `urn:pushbridge:problem:<kind>`.
    public var kind: String
    public var title: String
    public var detail: String
    /// The offending member as a dotted path (`token`, `device.osVersion`, `events[0].name`).
    public var field: String?
    public var headers: HTTPFields = [:]
    /// Storage failed in a way that cannot tell whether the write was stored (an idempotency key stays taken).
    var outcomeUnknown = false

    public init(_ status: HTTPResponse.Status, _ kind: String, _ title: String, detail: String, field: String? = nil) {
        self.status = status
        self.kind = kind
        self.title = title
        self.detail = detail
        self.field = field
    }

    static func invalid(_ field: String, _ detail: String) -> Problem {
        Problem(.unprocessableContent, "invalid-field", "Invalid request member", detail: detail, field: field)
    }

    var type: String { "urn:pushbridge:problem:\(kind)" }

    func response() -> Response {
        var object: [String: Any] = ["type": type, "title": title, "status": Int(status.code), "detail": detail]
        if let field { object["field"] = field }
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
        var headers = self.headers
        headers[.contentType] = "application/problem+json"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}

/// Turns every error into problem+json: our own problems, Hummingbird's (unknown route, body too
/// large) and anything unexpected (500, logged without the request body).
struct ProblemMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let problem as Problem {
            return problem.response()
        } catch let error as HTTPError {
            switch error.status {
            case .notFound:
                return Problem(.notFound, "not-found", "Not found", detail: "No route matches \(request.method) \(request.uri.path).").response()
            case .contentTooLarge:
                return Problem.bodyTooLarge.response()
            default:
                return Problem(error.status, "http-error", error.status.reasonPhrase, detail: error.body ?? error.status.reasonPhrase).response()
            }
        } catch {
            context.logger.error("request failed", metadata: ["path": "\(request.uri.path)", "error": "\(String(describing: error).prefix(300))"])
            return Problem(.internalServerError, "internal", "Internal error", detail: "The request could not be completed; it was not stored.").response()
        }
    }
}

extension Problem {
    /// Storage failed or did not answer in time: 503 with `Retry-After`, so clients and load balancers try again.
    static func storageUnavailable(mayBeStored: Bool) -> Problem {
        var p = Problem(.serviceUnavailable, "storage-unavailable", "Storage unavailable", detail: mayBeStored
            ? "Storage did not answer in time or lost the connection. A write may still be stored; sending it again after Retry-After seconds is safe (an unchanged token or contact is deduplicated)."
            : "Storage failed; nothing was stored. Send the request again after Retry-After seconds.")
        p.headers[.retryAfter] = "2"
        p.outcomeUnknown = mayBeStored
        return p
    }

    static let bodyTooLarge = Problem(.contentTooLarge, "body-too-large", "Request body too large", detail: "The body may hold at most 65536 bytes.")
}
