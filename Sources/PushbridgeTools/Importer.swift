import AsyncHTTPClient
import Foundation
import NIOCore
import NIOFoundationCompat

/// Bulk onboarding through the public API, so every row gets the same validation, deduplication
/// and queue bound as a backend's own requests. Idempotent and resumable: a row that is already
/// there answers 200 deduplicated and counts as unchanged. A 429 (queue at its bound) or 503 waits
/// for `Retry-After` and sends the row again.
public struct Importer: Sendable {
    public struct Summary: Sendable, Equatable {
        public var imported = 0
        public var unchanged = 0
        public var rejected: [(line: Int, deviceId: String, reason: String)] = []
        public var done: Int { imported + unchanged + rejected.count }

        /// The rejected rows as CSV (`line,deviceId,reason`), for the rejects file.
        public var rejectsCSV: String {
            var csv = "line,deviceId,reason\n"
            for r in rejected { csv += "\(r.line),\(Self.csvField(r.deviceId)),\(Self.csvField(r.reason))\n" }
            return csv
        }

        static func csvField(_ s: String) -> String {
            s.contains(",") || s.contains("\"") || s.contains("\n") ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
        }
        public static func == (a: Summary, b: Summary) -> Bool {
            a.imported == b.imported && a.unchanged == b.unchanged && a.rejected.map(\.line) == b.rejected.map(\.line)
        }
    }

    public let baseURL: String
    public let appCode: String
    public let apiKey: String?
    public let concurrency: Int
    private let http: HTTPClient

    public init(http: HTTPClient, baseURL: String, appCode: String, apiKey: String?, concurrency: Int = 8) {
        self.http = http
        var base = baseURL
        while base.hasSuffix("/") { base.removeLast() }
        self.baseURL = base
        self.appCode = appCode
        self.apiKey = apiKey
        self.concurrency = max(1, concurrency)
    }

    /// Imports `rows`; `progress` is called after each row with the running summary.
    public func run(_ rows: [Result<ImportRow, ImportRowError>], progress: @Sendable (Summary) -> Void = { _ in }) async throws -> Summary {
        var summary = Summary()
        var pending = rows[...]
        try await withThrowingTaskGroup(of: (ImportRow?, Outcome).self) { group in
            func next() {
                guard let row = pending.popFirst() else { return }
                switch row {
                case .failure(let e): group.addTask { (nil, .rejected(e.reason, line: e.line)) }
                case .success(let r): group.addTask { (r, try await self.send(r)) }
                }
            }
            for _ in 0..<concurrency { next() }
            while let (row, outcome) = try await group.next() {
                switch outcome {
                case .imported: summary.imported += 1
                case .unchanged: summary.unchanged += 1
                case .rejected(let reason, let line): summary.rejected.append((line, row?.deviceId ?? "", reason))
                }
                progress(summary)
                next()
            }
        }
        summary.rejected.sort { $0.line < $1.line }
        return summary
    }

    enum Outcome: Sendable {
        case imported, unchanged
        case rejected(String, line: Int)
    }

    private func send(_ row: ImportRow) async throws -> Outcome {
        let device = "\(baseURL)/v1/apps/\(appCode)/devices/\(Self.escape(row.deviceId))"
        var token: Any = row.token
        if row.token.hasPrefix("{"), let object = try? JSONSerialization.jsonObject(with: Data(row.token.utf8)) { token = object }
        let (tokenStatus, tokenReason) = try await put(device + "/push-token", ["provider": row.provider, "token": token])
        guard tokenStatus == 200 || tokenStatus == 202 else { return .rejected(tokenReason, line: row.line) }
        var changed = tokenStatus == 202
        if let contact = row.contactValue {
            let (contactStatus, contactReason) = try await put(device + "/contact", ["fieldValue": contact])
            guard contactStatus == 200 || contactStatus == 202 else { return .rejected(contactReason, line: row.line) }
            changed = changed || contactStatus == 202
        }
        return changed ? .imported : .unchanged
    }

    /// PUT with JSON; retries 429 and 503 after `Retry-After` (at most 10 minutes in all).
    private func put(_ url: String, _ body: [String: Any]) async throws -> (Int, String) {
        let data = try JSONSerialization.data(withJSONObject: body)
        let deadline = ContinuousClock.now + .seconds(600)
        while true {
            var request = HTTPClientRequest(url: url)
            request.method = .PUT
            request.headers.add(name: "Content-Type", value: "application/json")
            if let apiKey { request.headers.add(name: "Authorization", value: "Bearer \(apiKey)") }
            request.body = .bytes(ByteBuffer(data: data))
            let response = try await http.execute(request, timeout: .seconds(30))
            let payload = try await response.body.collect(upTo: 1 << 20)
            let status = Int(response.status.code)
            if (status == 429 || status == 503) && ContinuousClock.now < deadline {
                let wait = Double(response.headers.first(name: "Retry-After") ?? "1") ?? 1
                try await Task.sleep(for: .milliseconds(Int64(min(max(wait, 0.1), 30) * 1000)))
                continue
            }
            let detail = ((try? JSONSerialization.jsonObject(with: Data(buffer: payload))) as? [String: Any])?["detail"] as? String
            return (status, detail ?? "HTTP \(status)")
        }
    }

    static func escape(_ s: String) -> String {
        s.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "/"))) ?? s
    }
}
