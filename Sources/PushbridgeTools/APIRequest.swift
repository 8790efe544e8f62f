import AsyncHTTPClient
import Foundation
import NIOCore
import NIOFoundationCompat

/// One request of a CLI tool to a running server's API: the bearer key, a JSON body, the whole answer.
struct APIRequest {
    let http: HTTPClient
    let baseURL: String
    let apiKey: String?

    /// Status and body (at most `limit` bytes).
    func send(_ method: String, _ path: String, body: Data? = nil, limit: Int = 4 << 20) async throws -> (status: Int, body: Data) {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = .init(rawValue: method)
        if let apiKey { request.headers.add(name: "Authorization", value: "Bearer \(apiKey)") }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(data: body))
        }
        let response = try await http.execute(request, timeout: .seconds(30))
        let bytes = try await response.body.collect(upTo: limit)
        return (Int(response.status.code), Data(buffer: bytes))
    }

    /// The error for an answer that was not the one expected.
    static func unexpected(_ method: String, _ path: String, _ status: Int, _ body: Data) -> StatusReport.StatusError {
        StatusReport.StatusError(message: "\(method) \(path) answered \(status): \(String(decoding: body.prefix(300), as: UTF8.self))")
    }
}
