/// Injected failures, the sandbox's way of making the bridge meet an unhealthy backend on demand.
///
/// A fault matches ME requests by method and path substring; each match consumes one count. Faults are tried in
/// creation order and the first one with counts left wins, so a test can stack "two 503s, then a slow answer".
public struct SandboxFault: Sendable, Hashable, Codable {
    /// What the matched request gets.
    public enum Mode: String, Sendable, Codable {
        /// Answer `status` (with a JSON error body) without touching state; with no status, only `latencyMs` applies.
        case status
        /// Close the connection without answering.
        case close
        /// Answer 200 with the truncated body `{"contactToken": `.
        case invalidJSON = "invalid-json"
        /// Handle the request normally but leave out `X-Client-State`.
        case noClientState = "no-client-state"
        /// A contact link answered without `refreshToken`: the client's refresh token stays the one it has (now
        /// for the new contact), as ME may answer; the SDKs keep the stored one.
        case noRefreshToken = "no-refresh-token"
    }

    /// The body of a status-mode answer: what real infrastructure answers with.
    public enum Body: String, Sendable, Codable, CaseIterable {
        /// The sandbox's JSON error (`{"status", "error"}`, with `code` when the fault names one).
        case json
        /// No body at all (what a load balancer or ME itself may give on a 5xx).
        case empty
        /// An HTML error page, `text/html`, as a proxy (nginx, a cloud load balancer) answers a 502 or 504.
        case html
    }

    public var id: String
    public var mode: Mode
    public var status: Int?
    /// Status mode: the answer's body (`json` when not given).
    public var body: Body?
    /// Status mode with a JSON body: an error code in it (`"code"`), as ME's error answers carry one.
    public var code: String?
    /// Matches remaining; `nil` = unlimited (until deleted).
    public var remaining: Int?
    /// At most this many matches per client (`X-Client-Id`), so that every client meets the fault the same
    /// number of times however the clients' requests interleave; `nil` = no per-client bound.
    public var perClient: Int?
    /// Matches so far per client id, for `perClient` (not in the listing).
    var hitsByClient: [String: Int] = [:]
    public var path: String?
    public var method: String?
    public var latencyMs: Int?
    public var retryAfter: String?
    /// How many requests this fault has hit so far.
    public var hits: Int

    func matches(method requestMethod: String, path requestPath: String, clientId: String?) -> Bool {
        if let remaining, remaining <= 0 { return false }
        if let perClient, hitsByClient[clientId ?? "", default: 0] >= perClient { return false }
        if let method, method.uppercased() != requestMethod.uppercased() { return false }
        if let path, !requestPath.contains(path) { return false }
        return true
    }

    enum CodingKeys: String, CodingKey {
        case id, mode, status, body, code, remaining, perClient, path, method, latencyMs, retryAfter, hits
    }

    /// Always writes every key (explicit `null`s), so the listing has a fixed shape.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode(mode, forKey: .mode)
        try container.encode(status, forKey: .status)
        try container.encode(body, forKey: .body)
        try container.encode(code, forKey: .code)
        try container.encode(remaining, forKey: .remaining)
        try container.encode(perClient, forKey: .perClient)
        try container.encode(path, forKey: .path)
        try container.encode(method, forKey: .method)
        try container.encode(latencyMs, forKey: .latencyMs)
        try container.encode(retryAfter, forKey: .retryAfter)
        try container.encode(hits, forKey: .hits)
    }
}

extension SandboxFault {
    /// Builds a fault from a `POST /_sandbox/faults` body; throws a 400 naming the bad field.
    static func parse(_ object: [String: SandboxJSON], id: String) throws(MEFailure) -> SandboxFault {
        func optionalInt(_ key: String) throws(MEFailure) -> Int? {
            guard let value = object[key], value != .null else { return nil }
            guard let int = value.intValue else { throw .invalidField(key, "must be an integer") }
            return int
        }
        func optionalString(_ key: String) throws(MEFailure) -> String? {
            guard let value = object[key], value != .null else { return nil }
            guard let string = value.stringValue, !string.isEmpty else { throw .invalidField(key, "must be a non-empty string") }
            return string
        }

        var mode = Mode.status
        if let rawMode = try optionalString("mode") {
            guard let parsed = Mode(rawValue: rawMode) else {
                throw .invalidField("mode", "must be one of status, close, invalid-json, no-client-state, no-refresh-token")
            }
            mode = parsed
        }
        let status = try optionalInt("status")
        if let status, !(200...599).contains(status) { throw .invalidField("status", "must be within 200...599") }
        let latencyMs = try optionalInt("latencyMs")
        if let latencyMs, latencyMs < 0 { throw .invalidField("latencyMs", "must not be negative") }
        if mode == .status, status == nil, latencyMs == nil {
            throw .invalidField("status", "required in status mode unless latencyMs is given")
        }

        var unlimited = false
        if let rawUnlimited = object["unlimited"] {
            guard case .bool(let flag) = rawUnlimited else { throw .invalidField("unlimited", "must be a boolean") }
            unlimited = flag
        }
        let count = try optionalInt("count")
        var remaining: Int?
        switch (count, unlimited) {
        case (nil, false): remaining = 1
        case (nil, true), (.some(0), true): remaining = nil
        case (let count?, false) where count >= 1: remaining = count
        case (_, true): throw .invalidField("count", "must be 0 or absent when unlimited is true")
        default: throw .invalidField("count", "must be at least 1 (or use unlimited: true)")
        }

        var body: Body?
        if let rawBody = try optionalString("body") {
            guard let parsed = Body(rawValue: rawBody) else {
                throw .invalidField("body", "must be one of \(Body.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            body = parsed
        }
        let code = try optionalString("code")
        if body != nil || code != nil {
            guard mode == .status, status != nil else { throw .invalidField(body != nil ? "body" : "code", "only with a status") }
        }
        if code != nil, body == .empty || body == .html { throw .invalidField("code", "only with a JSON body") }

        let perClient = try optionalInt("perClient")
        if let perClient, perClient < 1 { throw .invalidField("perClient", "must be at least 1") }
        let path = try optionalString("path")
        let method = try optionalString("method")?.uppercased()
        let retryAfter = try optionalString("retryAfter")
        return SandboxFault(
            id: id, mode: mode, status: status, body: body, code: code, remaining: remaining, perClient: perClient, path: path, method: method,
            latencyMs: latencyMs, retryAfter: retryAfter, hits: 0
        )
    }
}

/// The ordered list of active faults.
struct FaultList: Sendable {
    private(set) var faults: [SandboxFault] = []
    private var nextId = 1

    mutating func add(_ object: [String: SandboxJSON]) throws(MEFailure) -> SandboxFault {
        let fault = try SandboxFault.parse(object, id: "f\(nextId)")
        nextId += 1
        faults.append(fault)
        return fault
    }

    /// Finds the first fault matching the request and consumes one of its counts.
    mutating func consume(method: String, path: String, clientId: String?) -> SandboxFault? {
        guard let index = faults.firstIndex(where: { $0.matches(method: method, path: path, clientId: clientId) }) else { return nil }
        if faults[index].perClient != nil { faults[index].hitsByClient[clientId ?? "", default: 0] += 1 }
        faults[index].hits += 1
        if let remaining = faults[index].remaining { faults[index].remaining = remaining - 1 }
        return faults[index]
    }

    mutating func remove(id: String) -> Bool {
        guard let index = faults.firstIndex(where: { $0.id == id }) else { return false }
        faults.remove(at: index)
        return true
    }

    mutating func removeAll() { faults.removeAll() }
}
