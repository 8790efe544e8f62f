import Foundation
import HTTPTypes
import Hummingbird

/// JSON encoding and response building shared by all sandbox routes.
enum SandboxHTTP {
    /// Sorted keys and ISO-8601 dates with milliseconds (a rate check counts requests per second from them): stable,
    /// diff-friendly output for humans reading inspection answers.
    static func makeEncoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true)))
        }
        return encoder
    }

    static func encode(_ value: some Encodable) -> [UInt8] {
        // Only the sandbox's own Codable types reach here; they always encode.
        Array((try? makeEncoder().encode(value)) ?? Data("null".utf8))
    }

    static func response(status: HTTPResponse.Status, json bytes: [UInt8]?, headers: HTTPFields = [:]) -> Response {
        response(status: status, body: bytes, contentType: "application/json", headers: headers)
    }

    /// `bytes` of `contentType`; no body (and no `Content-Type`) when nil.
    static func response(status: HTTPResponse.Status, body bytes: [UInt8]?, contentType: String, headers: HTTPFields = [:]) -> Response {
        var headers = headers
        guard let bytes else { return Response(status: status, headers: headers) }
        headers[.contentType] = contentType
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    static func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) -> Response {
        response(status: status, json: encode(value))
    }

    static func error(_ status: HTTPResponse.Status, _ message: String, field: String? = nil) -> Response {
        response(status: status, json: errorBody(status: status, message: message, field: field))
    }
}

extension HTTPField.Name {
    static let xClientId = HTTPField.Name("X-Client-Id")!
    static let xClientState = HTTPField.Name("X-Client-State")!
    static let xContactToken = HTTPField.Name("X-Contact-Token")!
    static let xRequestOrder = HTTPField.Name("X-Request-Order")!
    static let xEmarsysSDKVersion = HTTPField.Name("X-EMARSYS-SDK-VERSION")!
    static let xEmarsysSDKMode = HTTPField.Name("X-EMARSYS-SDK-MODE")!
    static let xSandboxViolationCount = HTTPField.Name("X-Sandbox-Violation-Count")!
    /// The `Origin` of a request from an origin CORS does not allow (`OriginFilter`), kept for the log.
    static let xSandboxRefusedOrigin = HTTPField.Name("X-Sandbox-Refused-Origin")!
}
