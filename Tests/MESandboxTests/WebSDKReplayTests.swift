import AsyncHTTPClient
import Foundation
import MESandbox
import NIOHTTP1
import Testing

/// The Emarsys web push SDK's own requests, recorded on the wire (`web-sdk-requests.json`: the shared vectors beside
/// the repository, else the vendored copy), sent again to the sandbox with fresh client ids. The answers must be the
/// ones the SDK needs to go on: it stops at the first it cannot use.
@Suite("the web SDK's recorded requests, replayed")
struct WebSDKReplayTests {
    struct Record: Decodable {
        var step: String
        var stepLabel: String
        var method: String
        var path: String
        var headers: [String: String]
        var body: String?
        var sandboxAnswer: Answer
    }

    struct Answer: Decodable {
        var status: Int
        var headers: [String: String]?
        var body: String?
    }

    static func records(_ filePath: String = #filePath) throws -> [Record] {
        let tests = URL(fileURLWithPath: filePath).resolvingSymlinksInPath().deletingLastPathComponent()
        let shared = tests.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("shared/vectors/web-sdk-requests.json")
        let file = FileManager.default.fileExists(atPath: shared.path) ? shared : tests.appendingPathComponent("Vectors/web-sdk-requests.json")
        struct Vectors: Decodable { var records: [Record] }
        return try JSONDecoder().decode(Vectors.self, from: Data(contentsOf: file)).records
    }

    /// What a replay saw: each record with the answer it got now.
    struct Replayed {
        var record: Record
        var reply: Reply
        /// The fresh client id sent for the recorded one.
        var clientId: String?
    }

    /// Sends every record in order as `userAgent`: client ids mapped to fresh ones; client states, contact tokens and
    /// refresh tokens mapped from the recorded answers that carried them to the ones this replay got; contact tokens
    /// expired where the recording's harness expired them.
    static func replay(_ records: [Record], on harness: SandboxHarness, userAgent: String?) async throws -> [Replayed] {
        var ids: [String: String] = [:]
        var values: [String: String] = [:]
        var replayed: [Replayed] = []
        var step = ""
        for record in records {
            if record.step != step, record.stepLabel.contains("expire") {
                #expect(try await harness.send(.POST, "/_sandbox/contact-tokens/expire").status == 200)
            }
            step = record.step
            var headers: [(String, String)] = []
            var contentType: String?
            var clientId: String?
            for (name, value) in record.headers.sorted(by: { $0.key < $1.key }) {
                switch name.lowercased() {
                case "content-type":
                    contentType = value
                case "x-client-id":
                    let fresh = ids[value] ?? "EMS12-34567_" + UUID().uuidString.lowercased()
                    ids[value] = fresh
                    clientId = fresh
                    headers.append((name, fresh))
                default:
                    headers.append((name, values[value] ?? value))
                }
            }
            var body = record.body ?? ""
            for (recorded, now) in values where body.contains(recorded) {
                body = body.replacingOccurrences(of: recorded, with: now)
            }
            let reply = try await harness.send(
                HTTPMethod(rawValue: record.method), record.path, headers: headers, body: body.isEmpty ? nil : body,
                userAgent: userAgent, contentType: contentType)
            // What the SDK keeps from this answer, by the recorded value it stands for.
            if let recorded = record.sandboxAnswer.headers?["x-client-state"], let now = reply.clientState {
                values[recorded] = now
            }
            let recordedBody = record.sandboxAnswer.body.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) } as? [String: Any]
            for key in ["contactToken", "refreshToken"] {
                if let recorded = recordedBody?[key] as? String, let now = reply.json?[key] as? String { values[recorded] = now }
            }
            replayed.append(Replayed(record: record, reply: reply, clientId: clientId))
        }
        return replayed
    }

    @Test("every call the SDK makes gets the answer it needs, and the ME-rules profile flags none of them")
    func replayWebSDK() async throws {
        let records = try Self.records()
        #expect(records.count >= 30)
        try await SandboxHarness.withSandbox { harness in
            let replayed = try await Self.replay(records, on: harness, userAgent: nil)
            for entry in replayed {
                let (record, reply) = (entry.record, entry.reply)
                let label = "\(record.step) \(record.method) \(record.path) -> \(reply.status) \(reply.body.prefix(160))"
                // Every request reaches an ME route (the current SDK's /v3/domains/ included) or the CORS answer.
                #expect(reply.status != 404, "\(label)")
                if record.method == "OPTIONS" {
                    #expect(reply.status == 204, "\(label)")
                    #expect(reply.headers.first(name: "Access-Control-Allow-Origin") == "*", "\(label)")
                    let allowed = reply.headers.first(name: "Access-Control-Allow-Headers")?.lowercased() ?? ""
                    for header in ["x-client-id", "x-client-state", "x-contact-token", "x-request-order", "content-type"] {
                        #expect(allowed.contains(header), "\(label): \(header) not allowed")
                    }
                    continue
                }
                if record.step.hasPrefix("A5") || record.step.hasPrefix("P") {
                    // The harness's probes of each route with an empty object: routed, and where the ME rules refuse
                    // one, a JSON error naming why.
                    if !(200..<300).contains(reply.status) { #expect(reply.json?["error"] is String, "\(label)") }
                    continue
                }
                let expected = Self.neededStatus(record)
                #expect(reply.status == expected, "\(label)")
                if (200..<300).contains(reply.status) {
                    #expect(reply.clientState != nil, "\(label): no X-Client-State")
                }
                if record.path.hasSuffix("/client/contact") || record.path.contains("/client/contact?") {
                    #expect(reply.json?["contactToken"] is String, "\(label)")
                    #expect(reply.json?["refreshToken"] is String, "\(label)")
                    let state = try #require(reply.clientState, "\(label)")
                    let payload = try #require(jwtPayload(state))
                    let field = payload["contactField"] as? [String: Any]
                    if record.path.contains("anonymous=true") {
                        #expect(field?.isEmpty == true, "\(label): an anonymous contact reads as nobody logged in")
                    } else {
                        // After an identified link the SDK reads who is logged in from the client state.
                        #expect(field?["contactFieldId"] as? Int == 3, "\(label)")
                        #expect(field?["contactFieldValue"] as? String == "websdk.harness@example.com", "\(label)")
                        let contactToken = try #require(reply.json?["contactToken"] as? String)
                        let token = try #require(jwtPayload(contactToken))
                        #expect(token["contactReference"] is String && token["contactId"] is Int && token["exp"] is Int, "\(label)")
                    }
                }
                if record.path.hasSuffix("/contact-token") {
                    #expect(reply.json?["contactToken"] is String, "\(label)")
                }
                // A push token PUT shows in the client state, which the SDK compares before sending again.
                if record.method == "PUT", let sent = (try? JSONSerialization.jsonObject(with: Data((record.body ?? "").utf8)) as? [String: Any])?["pushToken"] as? String {
                    let state = try #require(reply.clientState, "\(label)")
                    #expect(jwtPayload(state)?["pushToken"] as? String == sent, "\(label)")
                }
            }

            // Every request is in the log, with the answer it got: unrouted and preflights included.
            let log = try await harness.get("/_sandbox/requests", as: [SandboxRequestRecord].self)
            #expect(log.map { "\($0.method) \($0.path)" } == replayed.map { "\($0.record.method) \($0.record.path.split(separator: "?")[0])" })
            #expect(log.map(\.status) == replayed.map(\.reply.status))
            #expect(log.allSatisfy { !$0.invariantsChecked })
            #expect(log.first { $0.method == "OPTIONS" }?.origin == "https://shop.example")

            // The ME rules alone: an SDK numbering its requests per service and keeping the client state only from
            // client-service answers breaks no rule of ME's, so nothing is flagged or counted against it.
            let violations = try await harness.send(.GET, "/_sandbox/violations")
            #expect(violations.body == "[]")
            #expect(violations.headers.first(name: "X-Sandbox-Violation-Count") == "0")
            for clientId in Set(replayed.compactMap(\.clientId)) {
                let counts = try #require(await harness.sandbox.client(clientId)?.counts)
                #expect(counts.orderViolations == 0 && counts.staleClientStates == 0, "\(clientId)")
            }
        }
    }

    @Test("the same requests as pushbridge's traffic are judged by its invariants too")
    func bridgeProfileFlagsTheSDKsHabits() async throws {
        let records = try Self.records().filter { $0.step.hasPrefix("B") }
        try await SandboxHarness.withSandbox { harness in
            _ = try await Self.replay(records, on: harness, userAgent: SandboxHarness.bridgeAgent)
            let violations = try await harness.get("/_sandbox/violations", as: [SandboxViolation].self)
            let kinds = Set(violations.map(\.kind))
            // The web SDK numbers client-service and event-service requests apart, and sends no SDK headers.
            #expect(kinds.contains(SandboxViolation.Kind.requestOrderNotIncreasing.rawValue))
            #expect(kinds.contains(SandboxViolation.Kind.missingHeader.rawValue))
            let log = try await harness.get("/_sandbox/requests", as: [SandboxRequestRecord].self)
            #expect(log.allSatisfy { $0.invariantsChecked })
        }
    }

    /// The status the SDK needs for a recorded request: what the recording got where that was right (the 401 the
    /// harness provoked by expiring the contact tokens), else the success the SDK waits for.
    static func neededStatus(_ record: Record) -> Int {
        if record.sandboxAnswer.status == 401 { return 401 }
        let path = record.path.split(separator: "?")[0]
        if path.hasSuffix("/client/contact") || path.hasSuffix("/client/contact-token") { return 200 }
        return 204
    }
}
