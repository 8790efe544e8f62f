import AsyncHTTPClient
import Foundation
import PushbridgeServer
import Storage
import Workflow

/// `pushbridge export`: every device status of an app, one per line (NDJSON) or row (CSV), as the API answers them:
/// ids and hashes only. Read page by page in device-id order, from a running server's `GET .../devices` or straight
/// from a store opened read-only; each page is read as it is then (not one snapshot), and no device comes twice.
public struct Export: Sendable {
    public enum Format: String, Sendable, CaseIterable {
        case ndjson, csv
    }

    public enum Source: Sendable {
        /// A running server's API.
        case api(http: HTTPClient, baseURL: String, apiKey: String?)
        /// A store (a running server's SQLite file opened read-only is safe).
        case store(any DeviceStore)
    }

    public let source: Source
    public let appCode: String
    /// Only devices in this state (`DeviceStateName`), when given.
    public let state: String?
    public let format: Format
    /// Devices per page.
    public var pageSize = 1000

    public init(source: Source, appCode: String, state: String?, format: Format) throws {
        if let state, DeviceStateName(rawValue: state) == nil {
            throw StatusReport.StatusError(message: "--state must be one of \(DeviceStateName.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        self.source = source
        self.appCode = appCode
        self.state = state
        self.format = format
    }

    /// How many devices the export will write, as the app's counts say now (for a progress bar; devices come and go
    /// while it runs).
    public func expectedCount() async throws -> Int {
        switch source {
        case .api(let http, let baseURL, let apiKey):
            let path = "/v1/apps/\(appCode)/stats"
            let (status, body) = try await APIRequest(http: http, baseURL: baseURL, apiKey: apiKey).send("GET", path)
            guard status == 200, let object = try JSONSerialization.jsonObject(with: body) as? [String: Any] else {
                throw APIRequest.unexpected("GET", path, status, body)
            }
            if let state { return (object["byState"] as? [String: Any])?[state] as? Int ?? 0 }
            return object["devices"] as? Int ?? 0
        case .store(let store):
            let counts = try await store.overview(app: appCode, failures: 0).apps[appCode]
            if let state { return counts?.byState[state] ?? 0 }
            return counts?.total ?? 0
        }
    }

    /// Writes the header (CSV) and every status through `write`, a page at a time; `progress` hears the running count.
    /// Returns how many devices were written.
    @discardableResult
    public func run(write: (Data) throws -> Void, progress: (Int) -> Void = { _ in }) async throws -> Int {
        if format == .csv { try write(Data((Self.csvColumns.joined(separator: ",") + "\n").utf8)) }
        var cursor: String?
        var written = 0
        repeat {
            let (devices, next) = try await page(after: cursor)
            var chunk = Data()
            for status in devices { chunk.append(line(status)) }
            try write(chunk)
            written += devices.count
            progress(written)
            cursor = next
        } while cursor != nil
        return written
    }

    /// One status as a line of the format.
    public func line(_ status: DeviceStatus) -> Data {
        switch format {
        case .ndjson:
            var bytes = status.jsonBytes()
            bytes.append(UInt8(ascii: "\n"))
            return Data(bytes)
        case .csv:
            return Data((Self.csvFields(status).map(Self.csvEscaped).joined(separator: ",") + "\n").utf8)
        }
    }

    private func page(after cursor: String?) async throws -> ([DeviceStatus], String?) {
        switch source {
        case .api(let http, let baseURL, let apiKey):
            var components = URLComponents()
            components.queryItems = [URLQueryItem(name: "limit", value: "\(pageSize)")]
                + (state.map { [URLQueryItem(name: "state", value: $0)] } ?? [])
                + (cursor.map { [URLQueryItem(name: "cursor", value: $0)] } ?? [])
            let path = "/v1/apps/\(appCode)/devices?" + (components.percentEncodedQuery ?? "")
            let (status, body) = try await APIRequest(http: http, baseURL: baseURL, apiKey: apiKey).send("GET", path, limit: 64 << 20)
            guard status == 200 else { throw APIRequest.unexpected("GET", path, status, body) }
            let page = try JSONDecoder().decode(APIPage.self, from: body)
            return (page.devices, page.nextCursor)
        case .store(let store):
            let page = try await store.list(app: appCode, state: state, limit: pageSize, after: cursor)
            return (page.devices.map { DeviceStatus($0) }, page.nextCursor)
        }
    }

    private struct APIPage: Decodable {
        var devices: [DeviceStatus]
        var nextCursor: String?
    }

    // MARK: CSV

    /// The CSV columns: the status document's members, nested ones by their dotted path.
    public static let csvColumns = [
        "appCode", "deviceId", "clientId", "provider", "platform", "tokenHash", "state", "contact.kind", "contact.fieldId",
        "steps.client.done", "steps.client.at", "steps.contact.done", "steps.contact.at", "steps.pushToken.done", "steps.pushToken.at",
        "steps.pushToken.tokenHash", "pending", "waitingFor", "lastError.step", "lastError.status", "lastError.message",
        "lastError.attempts", "lastError.at", "lastError.nextAttemptAt", "updatedAt", "lastSeenAt",
    ]

    /// The fields of one row, in `csvColumns`' order; empty for null.
    static func csvFields(_ s: DeviceStatus) -> [String] {
        func text(_ v: (any CustomStringConvertible)?) -> String { v.map { "\($0)" } ?? "" }
        let e = s.lastError
        return [
            s.appCode, s.deviceId, s.clientId, text(s.provider), s.platform, text(s.tokenHash), s.state, s.contact.kind, text(s.contact.fieldId),
            text(s.steps.client.done), text(s.steps.client.at), text(s.steps.contact.done), text(s.steps.contact.at),
            text(s.steps.pushToken.done), text(s.steps.pushToken.at), text(s.steps.pushToken.tokenHash), text(s.pending), text(s.waitingFor),
            text(e?.step), text(e?.status), Self.noFormula(text(e?.message)), text(e?.attempts), text(e?.at), text(e?.nextAttemptAt), s.updatedAt, s.lastSeenAt,
        ]
    }

    /// Free text (an error message, which may quote what ME answered) that a spreadsheet would run as a formula
    /// (`=`, `+`, `-`, `@`, a tab or a carriage return first) gets a leading `'`. Ids and hashes are written as they are.
    public static func noFormula(_ text: String) -> String {
        guard let first = text.unicodeScalars.first, "=+-@\t\r".unicodeScalars.contains(first) else { return text }
        return "'" + text
    }

    /// RFC 4180: a field with a comma, a quote or a line break is quoted, its quotes doubled.
    public static func csvEscaped(_ field: String) -> String {
        // By scalar: "\r\n" is one Character, equal to neither "\r" nor "\n".
        guard field.unicodeScalars.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return field }
        return "\"" + field.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
