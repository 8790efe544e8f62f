import Foundation
import Hummingbird
import NIOCore
import PushTokens

/// Reads request bodies as JSON with the contract's errors: syntax 400, shape 422 with `field`,
/// more than 64 KiB 413. Members the contract does not name are ignored.
enum JSONInput {
    static let maxBodyBytes = 65_536

    static func body(_ request: Request) async throws -> [String: JSONValue] {
        var request = request
        let buffer: ByteBuffer
        do {
            buffer = try await request.collectBody(upTo: maxBodyBytes)
        } catch is NIOTooManyBytesError {
            throw Problem.bodyTooLarge
        } catch let error as HTTPError where error.status == .contentTooLarge {
            throw Problem.bodyTooLarge
        }
        guard buffer.readableBytes > 0 else {
            throw Problem(.badRequest, "invalid-json", "Invalid JSON", detail: "The request needs a JSON object body.")
        }
        // The same strict parser the token plugins use for subscriptions given as text, so a subscription
        // object in the body follows the same rules (no fraction or exponent in `expirationTime`, at most
        // 16 levels nested in the body), at a fraction of the cost of `JSONDecoder` into `JSONValue`.
        guard let value = JSONValue.parse(Array(buffer.readableBytesView)) else {
            throw Problem(.badRequest, "invalid-json", "Invalid JSON", detail: "The body is not valid JSON (RFC 8259, UTF-8, at most 16 levels nested in the body).")
        }
        guard case .object(let object) = value else {
            throw Problem(.unprocessableContent, "invalid-field", "Invalid request member", detail: "The body must be a JSON object.", field: "")
        }
        return object
    }

    /// The body as bytes, at most 64 KiB (413 past it), for reading it twice (an idempotent write's fingerprint).
    static func collect(_ request: inout Request) async throws -> ByteBuffer {
        do {
            return try await request.collectBody(upTo: maxBodyBytes)
        } catch is NIOTooManyBytesError {
            throw Problem.bodyTooLarge
        } catch let error as HTTPError where error.status == .contentTooLarge {
            throw Problem.bodyTooLarge
        }
    }

    /// A body that must be empty or absent (or `{}`), for DELETE routes. Still bounded.
    static func drain(_ request: Request) async throws {
        var request = request
        do {
            _ = try await request.collectBody(upTo: maxBodyBytes)
        } catch is NIOTooManyBytesError {
            throw Problem.bodyTooLarge
        } catch let error as HTTPError where error.status == .contentTooLarge {
            throw Problem.bodyTooLarge
        }
    }
}

/// Typed access to members with 422 problems that name the member.
struct Members {
    let object: [String: JSONValue]
    let path: String

    init(_ object: [String: JSONValue], path: String = "") {
        self.object = object
        self.path = path
    }

    func name(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    func string(_ key: String, required: Bool = false, maxLength: Int = 1024) throws -> String? {
        switch object[key] {
        case nil, .null?:
            if required { throw Problem.invalid(name(key), "\(name(key)) is required.") }
            return nil
        case .string(let s)?:
            if required && s.isEmpty { throw Problem.invalid(name(key), "\(name(key)) must not be empty.") }
            guard s.utf8.count <= maxLength else { throw Problem.invalid(name(key), "\(name(key)) may hold at most \(maxLength) bytes.") }
            return s
        default:
            throw Problem.invalid(name(key), "\(name(key)) must be a string.")
        }
    }

    func int(_ key: String, min: Int64, max: Int64) throws -> Int? {
        switch object[key] {
        case nil, .null?: return nil
        case .integer(let i)? where i >= min && i <= max: return Int(i)
        case .double(let d)? where Int64(exactly: d).map { $0 >= min && $0 <= max } == true: return Int(d)  // 3.0
        default: throw Problem.invalid(name(key), "\(name(key)) must be a whole number between \(min) and \(max).")
        }
    }

    func object(_ key: String) throws -> Members? {
        switch object[key] {
        case nil, .null?: return nil
        case .object(let o)?: return Members(o, path: name(key))
        default: throw Problem.invalid(name(key), "\(name(key)) must be an object.")
        }
    }
}
