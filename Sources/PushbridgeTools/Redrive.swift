import AsyncHTTPClient
import Foundation
import NIOCore
import NIOFoundationCompat

/// `pushbridge retry`: asks a running server to re-drive an app's failed devices (`POST .../devices/retry`), then
/// follows them through the app's counts until they have left `failed` (or a deadline passes).
public struct Redrive: Sendable {
    public let http: HTTPClient
    public let baseURL: String
    public let appCode: String
    public let apiKey: String?

    public init(http: HTTPClient, baseURL: String, appCode: String, apiKey: String?) {
        self.http = http
        self.baseURL = baseURL
        self.appCode = appCode
        self.apiKey = apiKey
    }

    /// Where a re-drive stands: of the `retried` devices, how many are no longer `failed`.
    public struct Progress: Sendable, Hashable {
        public var retried: Int
        /// Failed devices the re-drive did not take (another step than the one asked for, or no work queued).
        public var untouched: Int
        public var stillFailed: Int
        public var done: Int { max(0, retried - stillFailed) }

        public init(retried: Int, untouched: Int, stillFailed: Int) {
            self.retried = retried
            self.untouched = untouched
            self.stillFailed = stillFailed
        }
    }

    /// Re-drives the failed devices (of `step`, when given); the starting point.
    public func start(step: String?) async throws -> Progress {
        let before = try await failedCount()
        var body: [String: String] = ["state": "failed"]
        if let step { body["step"] = step }
        let (status, answer) = try await send("POST", "/v1/apps/\(appCode)/devices/retry", body: try JSONSerialization.data(withJSONObject: body))
        guard status == 202, let object = try JSONSerialization.jsonObject(with: answer) as? [String: Any], let retried = object["devices"] as? Int else {
            throw APIRequest.unexpected("POST", "/v1/apps/\(appCode)/devices/retry", status, answer)
        }
        return Progress(retried: retried, untouched: max(0, before - retried), stillFailed: retried)
    }

    /// `progress` as the app's counts show it now: a retried device that failed again counts as still failed.
    public func poll(_ progress: Progress) async throws -> Progress {
        var next = progress
        next.stillFailed = min(progress.retried, max(0, try await failedCount() - progress.untouched))
        return next
    }

    /// The app's devices in `failed`.
    func failedCount() async throws -> Int {
        let (status, body) = try await send("GET", "/v1/apps/\(appCode)/stats", body: nil)
        guard status == 200, let object = try JSONSerialization.jsonObject(with: body) as? [String: Any] else {
            throw APIRequest.unexpected("GET", "/v1/apps/\(appCode)/stats", status, body)
        }
        return (object["byState"] as? [String: Any])?["failed"] as? Int ?? 0
    }

    private func send(_ method: String, _ path: String, body: Data?) async throws -> (Int, Data) {
        try await APIRequest(http: http, baseURL: baseURL, apiKey: apiKey).send(method, path, body: body)
    }
}
