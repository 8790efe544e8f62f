import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Storage

/// `Idempotency-Key` on the writes under `/v1/apps/`: the same key on the same app within 24 hours, with the same
/// method, path and body, gets the first answer again and changes nothing; with another request 422
/// (`idempotency-key-reused`); while the first is still being answered 409 (`idempotency-key-in-use`).
///
/// The key is taken before the write and its answer kept after it, in two storage writes: an instance that dies in
/// between, or storage that fails without telling whether the write went through, leaves the key taken, and it is
/// free again once abandoned (a minute, or twice `storage.timeoutMs`). Answers a retry must be able to get past
/// (429, a 503 that stored nothing, and a 409 of this very check) are not kept: the key is freed. Each claim carries
/// its own token, so a request that outlived its claim cannot settle the claim of the one that took over.
extension BridgeAPI {
    static let idempotencyKeyField = HTTPField.Name("Idempotency-Key")!

    /// `handler`, made idempotent when the request carries the header.
    func idempotent(_ handler: @escaping @Sendable (Request, BasicRequestContext) async throws -> Response) -> @Sendable (Request, BasicRequestContext) async throws -> Response {
        { request, context in
            guard let key = request.headers[Self.idempotencyKeyField] else { return try await handler(request, context) }
            let app = try self.app(request, context)  // an unknown app or a missing key answers as without the header
            guard Self.validIdempotencyKey(key) else {
                throw Problem.invalid("Idempotency-Key", "Idempotency-Key must be 1 to 255 printable ASCII characters.")
            }
            var request = request
            // The path as the handlers read it (`a%3Ab` is the device `a:b`), and the body as JSON compared.
            let path = Self.decoded(request.uri.path)
            var fingerprint = Data("\(request.method.rawValue)\n\(path)\n".utf8)
            fingerprint.append(Self.canonicalBody(Data(buffer: try await JSONInput.collect(&request))))
            // A key whose request outlived every storage wait is abandoned: free again.
            let window = IdempotencyWindow(abandonedAfter: max(60, 2 * Double(config.storageTimeoutMs) / 1000))
            let claimed = try await storage("idempotency") { [store, fingerprint] in
                try await store.claimIdempotencyKey(app: app.code, key: key, request: fingerprint, now: Date(), window: window)
            }
            let claim: String
            switch claimed {
            case .replay(let answer):
                metrics.idempotentRequest("replayed")
                var headers: HTTPFields = [.contentType: answer.contentType]
                headers[Self.idempotentReplayedField] = "true"
                return Response(status: .init(code: answer.status), headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: answer.body)))
            case .inProgress:
                metrics.idempotentRequest("in_progress")
                var p = Problem(.conflict, "idempotency-key-in-use", "Idempotency key in use", detail: "A request with this Idempotency-Key is still being answered; send it again in a moment.")
                p.headers[.retryAfter] = "1"
                throw p
            case .mismatch:
                metrics.idempotentRequest("reused")
                throw Problem(
                    .unprocessableContent, "idempotency-key-reused", "Idempotency key reused",
                    detail: "This Idempotency-Key was used in the last 24 hours with another method, path or body; nothing was changed.",
                    field: "Idempotency-Key")
            case .proceed(let token):
                claim = token
            }
            let response: Response
            do {
                response = try await handler(request, context)
            } catch let problem as Problem {
                if problem.outcomeUnknown {
                    // Storage cannot tell whether the write went through: the key stays taken (409 to a retry) until
                    // it is abandoned, rather than let a retry store the write a second time.
                    throw problem
                }
                response = problem.response()
            } catch {
                // Not an answer of ours (the problem middleware makes it a 500): the key is freed for a retry.
                _ = try? await storage("idempotency") { [store, fingerprint] in
                    try await store.settleIdempotencyKey(app: app.code, key: key, claim: claim, request: fingerprint, answer: nil)
                }
                throw error
            }
            // The answer as bytes, kept when a retry must get it again, and sent.
            let collector = BodyCollector()
            try await response.body.write(collector)
            let body = Array(buffer: collector.buffer)
            let keep = Self.keepsAnswer(status: Int(response.status.code))
            let answer = keep ? IdempotentAnswer(status: Int(response.status.code), contentType: response.headers[.contentType] ?? "application/json", body: body) : nil
            do {
                try await storage("idempotency") { [store, fingerprint] in
                    try await store.settleIdempotencyKey(app: app.code, key: key, claim: claim, request: fingerprint, answer: answer)
                }
            } catch {
                // The answer stands; only keeping it (or freeing the key) failed: the key stays taken until abandoned.
                logger.warning("an idempotency key could not be settled", metadata: ["app": "\(app.code)", "status": "\(response.status.code)"])
            }
            return Response(status: response.status, headers: response.headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
        }
    }

    static let idempotentReplayedField = HTTPField.Name("Idempotent-Replayed")!

    /// The body as compared between two uses of a key: JSON with its object members sorted (a client that sends
    /// the same request again may serialise a map in another order), else the bytes.
    static func canonicalBody(_ body: Data) -> Data {
        guard !body.isEmpty, let value = try? JSONSerialization.jsonObject(with: body, options: [.fragmentsAllowed]),
            let canonical = try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .fragmentsAllowed, .withoutEscapingSlashes])
        else { return body }
        return canonical
    }

    /// 1 to 255 printable ASCII characters.
    static func validIdempotencyKey(_ key: String) -> Bool {
        !key.isEmpty && key.utf8.count <= 255 && key.utf8.allSatisfy { (0x20...0x7E).contains($0) }
    }

    /// Every answer is kept but those a retry must be able to get past: too many requests, storage or the instance
    /// unavailable (nothing was done, or it is not known), and server errors.
    static func keepsAnswer(status: Int) -> Bool {
        status < 500 && status != 429 && status != 409
    }
}

/// Gathers a response body's bytes.
private final class BodyCollector: ResponseBodyWriter {
    var buffer = ByteBuffer()
    func write(_ buffer: ByteBuffer) async throws {
        var b = buffer
        self.buffer.writeBuffer(&b)
    }
    func finish(_ trailingHeaders: HTTPFields?) async throws {}
}
