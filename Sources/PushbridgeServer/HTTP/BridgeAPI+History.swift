import Foundation
import HTTPTypes
import Hummingbird
import Storage
import Workflow

/// `GET /v1/apps/{code}/devices/{deviceId}/history?limit=N`: what happened to a device, newest first.
extension BridgeAPI {
    func history(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        let (_, key) = try target(request, context)
        let limit: Int
        if let raw = request.uri.queryParameters["limit"] {
            guard let n = Int(String(raw)), (1...500).contains(n) else { throw Problem.invalid("limit", "limit must be a whole number from 1 to 500.") }
            limit = n
        } else {
            limit = 50
        }
        guard let records = try await storage("history", { [store] in try await store.history(of: key, limit: limit) }) else {
            throw Self.deviceNotFound(key)
        }
        return Response(
            status: .ok, headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(bytes: HistoryDocument.json(records))))
    }

    /// The intent's name in the history.
    static func intentName(_ write: DeviceWrite) -> String {
        switch write {
        case .start: "start"
        case .setToken: "push-token"
        case .removeToken: "push-token-removal"
        case .login, .openIdLogin: "login"
        case .logout: "logout"
        case .events: "events"
        case .forget: "delete"
        }
    }

    /// The request id the observability middleware gave the request (the client's `X-Request-Id`, or a new one).
    static func requestId(_ context: BasicRequestContext?) -> String? {
        context?.logger[metadataKey: "requestId"].map { "\($0)" }
    }
}

/// The history document of the API (`GET .../history`), also written by `pushbridge status --device` from the store.
public enum HistoryDocument {
    /// `{"entries": [{"at", "kind", ...the entry's members}]}`.
    public static func json(_ records: [HistoryRecord]) -> [UInt8] {
        var o = JSONOut()
        o.raw("{\"entries\":[")
        for (i, r) in records.enumerated() {
            if i > 0 { o.raw(",") }
            o.raw("{\"at\":")
            o.string(Timestamp.iso(r.at))
            o.raw(",\"kind\":")
            o.string(r.entry.kind)
            for (name, value) in r.entry.members {
                o.raw(",")
                o.string(name)
                o.raw(":")
                switch value {
                case .string(let s): o.string(s)
                case .int(let n): o.int(n)
                case .bool(let b): if b { o.raw("true") } else { o.raw("false") }
                case .null: o.raw("null")
                }
            }
            o.raw("}")
        }
        o.raw("]}")
        return o.bytes
    }
}
