import Foundation
import MESandbox
import Testing

/// Each row: 50 devices against one kind of ME misbehaviour, injected at the sandbox. Transient rows
/// end `registered`, permanent rows `failed` with `lastError` saying why; every client's requests
/// at ME keep their order.
@Suite("Fault matrix", .serialized)
struct FaultMatrixTests {
    struct Row: CustomTestStringConvertible, Sendable {
        var name: String
        /// The fault, injected before the devices start (or before the rotation, when `afterRegistration`).
        var fault: [String: String]
        var afterRegistration = false
        var revokeTokens = false
        var expected = "registered"
        var failedStep: String?
        /// What the failed device's `lastError.message` must say (beyond the status).
        var messageSays: String?
        /// Anonymous links allowed beyond the first: a re-link after a dead refresh token or a 4th 401, or
        /// a link whose answer was lost (at-least-once per step).
        var extraLinks = 0
        var testDescription: String { name }
    }

    static let devices = 50

    static let rows: [Row] = [
        Row(name: "500", fault: ["status": "500", "count": "60"]),
        Row(name: "502", fault: ["status": "502", "count": "60"]),
        Row(name: "503", fault: ["status": "503", "count": "60"]),
        // What infrastructure in front of ME answers: a proxy's HTML page, a load balancer's empty body.
        Row(name: "a proxy's HTML 502 page", fault: ["status": "502", "body": "html", "count": "60"]),
        Row(name: "503 with an empty body", fault: ["status": "503", "body": "empty", "count": "60"]),
        Row(name: "429 with Retry-After in seconds", fault: ["status": "429", "count": "50", "retryAfter": "1"]),
        Row(name: "429 with Retry-After as an HTTP date", fault: ["status": "429", "count": "50", "retryAfter": "http-date"]),
        Row(name: "answers slower than the request timeout", fault: ["latencyMs": "1500", "count": "30"]),
        Row(name: "connections closed mid-answer", fault: ["mode": "close", "count": "60"], extraLinks: 1),
        Row(name: "a contact answer with invalid JSON", fault: ["mode": "invalid-json", "count": "50", "path": "/client/contact"], extraLinks: 1),
        Row(name: "answers without X-Client-State", fault: ["mode": "no-client-state", "count": "100"]),
        // One 401 per client: with a shared count, a device whose refresh, re-link and retry came before another
        // device's first call met a second 401 and (rightly) gave up, so the row's outcome depended on timing.
        Row(name: "a 401 storm on contact-token calls", fault: ["status": "401", "perClient": "1", "count": "50", "path": "push-token"], afterRegistration: true, extraLinks: 1),
        Row(name: "refresh tokens revoked", fault: [:], afterRegistration: true, revokeTokens: true, extraLinks: 1),
        Row(name: "400 on push-token (permanent)", fault: ["status": "400", "count": "50", "path": "push-token"], expected: "failed", failedStep: "push-token"),
        Row(name: "400 with a JSON error code on push-token (permanent)", fault: ["status": "400", "code": "INVALID_PUSH_TOKEN", "count": "50", "path": "push-token"],
            expected: "failed", failedStep: "push-token", messageSays: "code INVALID_PUSH_TOKEN"),
        Row(name: "a proxy's HTML 403 on push-token (permanent)", fault: ["status": "403", "body": "html", "count": "50", "path": "push-token"],
            expected: "failed", failedStep: "push-token", messageSays: "HTML page"),
        Row(name: "404 on the events route (event skipped)", fault: ["status": "404", "count": "50", "path": "/client/events"]),
    ]

    static func faultBody(_ f: [String: String]) -> [String: Any] {
        var body: [String: Any] = [:]
        for (k, v) in f {
            switch k {
            case "retryAfter" where v == "http-date":
                let formatter = DateFormatter()
                formatter.locale = Locale(identifier: "en_US_POSIX")
                formatter.timeZone = TimeZone(identifier: "GMT")
                formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
                body[k] = formatter.string(from: Date().addingTimeInterval(2))
            case "retryAfter", "mode", "path", "body", "code": body[k] = v
            default: body[k] = Int(v)!
            }
        }
        return body
    }

    @Test("every device ends as the row says, and every client's requests stay in order", arguments: rows)
    func row(_ row: Row) async throws {
        try await withTestBed(configure: {
            $0.emarsys.requestTimeoutSeconds = 1
            $0.emarsys.retry = .init(initialDelayMs: 50, maxDelayMs: 500)
        }) { bed in
            let ids = (0..<Self.devices).map { "dev-\($0)" }
            if !row.afterRegistration && !row.fault.isEmpty { try await bed.addFault(Self.faultBody(row.fault)) }
            try await Self.each(ids) { id in
                let answer = try await bed.request("PUT", bed.devicePath(id), json: ["provider": "fcm", "token": Tokens.fcm()])
                #expect(answer.status == 202)
            }
            if row.afterRegistration {
                try await Self.each(ids) { id in _ = try await bed.waitForState(id, "registered", timeout: .seconds(60)) }
                if !row.fault.isEmpty { try await bed.addFault(Self.faultBody(row.fault)) }
                if row.revokeTokens {
                    await bed.sandbox.expireContactTokens()
                    await bed.sandbox.revokeRefreshTokens()
                }
                try await Self.each(ids) { id in
                    let answer = try await bed.request("PUT", bed.devicePath(id) + "/push-token", json: ["provider": "fcm", "token": Tokens.fcm()])
                    #expect(answer.status == 202)
                }
            }
            try await Self.each(ids) { id in
                let status = try await bed.waitFor(id, timeout: .seconds(90)) { ($0["state"] as? String) == row.expected && ($0["pending"] as? Int ?? 1) <= (row.expected == "failed" ? 1 : 0) }
                if let step = row.failedStep {
                    let lastError = try #require(status["lastError"] as? [String: Any])
                    #expect(lastError["step"] as? String == step)
                    let status = Int(row.fault["status"] ?? "") ?? 0
                    #expect(lastError["status"] as? Int == status)
                    let message = lastError["message"] as? String ?? ""
                    #expect(message.contains(String(status)), "\(message)")
                    if let says = row.messageSays { #expect(message.contains(says), "\(message)") }
                    // A proxy's page is named, never quoted into the status.
                    #expect(!message.contains("<"), "\(message)")
                } else {
                    #expect(status["lastError"] is NSNull, "\(id): \(status["lastError"] ?? "")")
                }
                let clientId = try #require(status["clientId"] as? String)
                let client = try #require(await bed.sandbox.client(clientId))
                let orders = client.requests.compactMap(\.requestOrder)
                #expect(zip(orders, orders.dropFirst()).allSatisfy { $0 < $1 }, "\(id): request order not increasing")
                #expect(client.counts.orderViolations == 0)
                if row.expected == "registered" {
                    #expect(client.pushToken != nil)
                    #expect(client.counts.anonymousLinks >= 1 && client.counts.anonymousLinks <= 1 + row.extraLinks)
                    if row.revokeTokens { #expect(client.counts.anonymousLinks == 2, "a dead refresh token leads to exactly one re-link") }
                }
            }
        }
    }

    static func each(_ ids: [String], _ body: @escaping @Sendable (String) async throws -> Void) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for id in ids { group.addTask { try await body(id) } }
            try await group.waitForAll()
        }
    }
}
