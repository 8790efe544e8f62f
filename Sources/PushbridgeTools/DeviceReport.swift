import AsyncHTTPClient
import Foundation
import NIOCore
import NIOFoundationCompat
import PushbridgeServer
import Storage
import Workflow

/// What `pushbridge status --device ID` shows: the device's status and its history (newest first), as the API
/// answers them (`GET .../devices/{id}` and `GET .../devices/{id}/history`). Ids, hashes and numbers only.
public struct DeviceReport: Sendable {
    /// The status document.
    public var status: Data
    /// The history document, `{"entries": [...]}`.
    public var history: Data

    public init(status: Data, history: Data) {
        self.status = status
        self.history = history
    }

    /// Through the API of a running server; nil when the device is not known.
    public static func from(
        url: String, app: String, device: String, limit: Int, apiKey: String?, http: HTTPClient
    ) async throws -> DeviceReport? {
        let path = "/v1/apps/\(app)/devices/\(Self.pathSegment(device))"
        guard let status = try await get(url + path, apiKey: apiKey, http: http),
            let history = try await get(url + path + "/history?limit=\(limit)", apiKey: apiKey, http: http)
        else { return nil }
        return DeviceReport(status: status, history: history)
    }

    private static func get(_ url: String, apiKey: String?, http: HTTPClient) async throws -> Data? {
        var request = HTTPClientRequest(url: url)
        if let apiKey { request.headers.add(name: "Authorization", value: "Bearer \(apiKey)") }
        let response = try await http.execute(request, timeout: .seconds(10))
        let body = try await response.body.collect(upTo: 4 << 20)
        if response.status == .notFound {
            // An unknown app is a mistake of the command line, not a device that is not there.
            guard !String(buffer: body).contains("urn:pushbridge:problem:unknown-app") else {
                throw StatusReport.StatusError(message: "GET \(url) answered 404: the server has no such app")
            }
            return nil
        }
        guard response.status == .ok else {
            throw StatusReport.StatusError(message: "GET \(url) answered \(response.status.code): \(String(buffer: body).prefix(300))")
        }
        return Data(buffer: body)
    }

    /// Straight from a store (read-only is safe beside a running server): the documents the API would answer;
    /// nil when the device is not known.
    public static func from(store: any DeviceStore, app: String, device: String, limit: Int) async throws -> DeviceReport? {
        let key = DeviceKey(appCode: app, deviceId: device)
        guard let device = try await store.snapshot(of: key), let records = try await store.history(of: key, limit: limit) else { return nil }
        return DeviceReport(status: Data(DeviceStatus(device).jsonBytes()), history: Data(HistoryDocument.json(records)))
    }

    /// A device id as one path segment.
    static func pathSegment(_ id: String) -> String {
        id.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "/"))) ?? id
    }

    /// `{"status": ..., "history": [...]}`.
    public func json() throws -> Data {
        let status = try JSONSerialization.jsonObject(with: status)
        let entries = (try JSONSerialization.jsonObject(with: history) as? [String: Any])?["entries"] ?? []
        return try JSONSerialization.data(
            withJSONObject: ["status": status, "history": entries], options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])
    }

    /// For people: the status in a few lines, then one line per history entry.
    public func rendered() -> String {
        let s = (try? JSONSerialization.jsonObject(with: status)) as? [String: Any] ?? [:]
        let entries = ((try? JSONSerialization.jsonObject(with: history)) as? [String: Any])?["entries"] as? [[String: Any]] ?? []
        func text(_ v: Any?) -> String {
            switch v {
            case nil, is NSNull: "-"
            case let v?: "\(v)"
            }
        }
        var out = "device \(text(s["appCode"]))/\(text(s["deviceId"])): \(text(s["state"]))\n"
        out += "  provider \(text(s["provider"])), platform \(text(s["platform"])), token hash \(text(s["tokenHash"]))\n"
        out += "  contact \(text((s["contact"] as? [String: Any])?["kind"])), pending \(text(s["pending"])), updated \(text(s["updatedAt"])), last seen \(text(s["lastSeenAt"]))\n"
        if let e = s["lastError"] as? [String: Any] {
            out += "  last error: \(text(e["step"])) \(text(e["status"])) after \(text(e["attempts"])) attempts: \(text(e["message"]))\n"
        }
        out += "\nhistory, newest first:" + (entries.isEmpty ? " none" : "") + "\n"
        for e in entries {
            let line: String
            switch e["kind"] as? String {
            case "intent":
                let dedup = (e["deduplicated"] as? Bool) == true ? " (deduplicated)" : ""
                line = "\(text(e["intent"]))\(dedup), request \(text(e["requestId"]))"
            case "call":
                let status = e["status"] is NSNull ? "network error" : text(e["status"])
                line = "\(text(e["endpoint"])) \(status), attempt \(text(e["attempt"])), \(text(e["durationMs"])) ms"
            case "state":
                line = "\(text(e["from"])) -> \(text(e["to"]))"
            case "webhook":
                let status = e["status"] is NSNull ? "no answer" : text(e["status"])
                line = "\(text(e["event"])) \(status), attempt \(text(e["attempt"]))"
            default:
                line = ""
            }
            out += "  \(text(e["at"]))  \(text(e["kind"]).padding(toLength: 7, withPad: " ", startingAt: 0))  \(line)\n"
        }
        return out
    }
}
