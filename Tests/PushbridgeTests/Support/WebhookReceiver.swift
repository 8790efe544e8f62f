import ConcurrencySupport
import Foundation
import HTTPTypes
import Hummingbird
import Logging

/// A webhook receiver on loopback: the real HTTP server a backend would run, recording every request it gets and
/// answering as the test says (204 by default; a status and `Retry-After` for the next requests; or never).
final class WebhookReceiver: Sendable {
    struct Delivery: Sendable {
        var id: String
        var timestamp: String
        var signature: String
        var contentType: String
        var body: Data
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] ?? [:] }
        var type: String { json["type"] as? String ?? "" }
        var data: [String: Any] { json["data"] as? [String: Any] ?? [:] }
    }

    enum Answer: Sendable {
        case status(Int, retryAfter: String?)
        /// Holds the request until the client gives up (a dead endpoint).
        case never
    }

    private let received = LockedValue<[Delivery]>([])
    /// Answers for the next requests, in order; after them, `otherwise`.
    private let script = LockedValue<[Answer]>([])
    private let otherwise = LockedValue<Answer>(.status(204, retryAfter: nil))
    private let task: Task<Void, Error>
    let port: Int

    var url: String { "http://127.0.0.1:\(port)/hook" }

    init() async throws {
        let box = OneShot<Int>()
        let router = Router()
        let received = self.received
        let script = self.script
        let otherwise = self.otherwise
        router.post("/hook") { request, _ -> Response in
            let body = try await request.body.collect(upTo: 1 << 20)
            func header(_ name: String) -> String { HTTPField.Name(name).flatMap { request.headers[$0] } ?? "" }
            received.update {
                $0.append(Delivery(
                    id: header("webhook-id"), timestamp: header("webhook-timestamp"), signature: header("webhook-signature"),
                    contentType: header("content-type"), body: Data(buffer: body)))
            }
            let answer = script.update { $0.isEmpty ? nil : $0.removeFirst() } ?? otherwise.get()
            switch answer {
            case .status(let code, let retryAfter):
                var headers = HTTPFields()
                if let retryAfter { headers[.retryAfter] = retryAfter }
                return Response(status: .init(code: code), headers: headers)
            case .never:
                // Far past the bridge's deadline; cut short (not thrown) when the receiver stops, so that the
                // server still finishes the answer it started.
                try? await Task.sleep(for: .seconds(30))
                return Response(status: .noContent)
            }
        }
        var logger = Logger(label: "receiver")
        logger.logLevel = .critical
        let app = Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0), serverName: "receiver"),
            onServerRunning: { channel in box.succeed(channel.localAddress?.port ?? 0) }, logger: logger)
        task = Task { try await app.runService() }
        port = try await box.value()
    }

    func answer(next answers: [Answer]) { script.update { $0 += answers } }
    func answer(otherwise answer: Answer) { otherwise.set(answer) }

    var deliveries: [Delivery] { received.get() }

    /// Waits until `condition` holds for what arrived (at most `timeout`).
    @discardableResult
    func waitFor(timeout: Duration = .seconds(30), _ condition: ([Delivery]) -> Bool) async throws -> [Delivery] {
        let deadline = ContinuousClock.now + timeout
        while true {
            let now = deliveries
            if condition(now) { return now }
            guard ContinuousClock.now < deadline else { return now }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    func stop() async {
        task.cancel()
        _ = try? await task.value
    }
}
