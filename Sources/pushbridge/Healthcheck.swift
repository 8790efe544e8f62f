import ArgumentParser
import AsyncHTTPClient
import Foundation

/// `pushbridge healthcheck`: the container image's HEALTHCHECK. GETs `/health` and exits 0 when the
/// answer is 200 with `{"status": "ok"}`, 1 on anything else (refused, timed out, other status or body).
struct Healthcheck: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Probe a running service's /health: exit 0 when it answers 200 {\"status\":\"ok\"}, 1 otherwise.")

    @Option(name: .long, help: "URL to probe (default: http://127.0.0.1:$PUSHBRIDGE_HTTP_PORT/health, port 8080 when unset).")
    var url: String?

    @Option(name: .long, help: "Seconds to wait for the whole answer.")
    var timeout: Double = 2

    @Flag(name: .long, help: "Print nothing on success or failure.")
    var quiet = false

    static func defaultURL(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        var port = "8080"
        if let value = environment["PUSHBRIDGE_HTTP_PORT"]?.trimmingCharacters(in: .whitespaces),
           let number = Int(value), (1...65535).contains(number) {
            port = String(number)
        }
        return "http://127.0.0.1:\(port)/health"
    }

    func validate() throws {
        guard timeout > 0, timeout.isFinite else { throw ValidationError("--timeout must be a positive number of seconds") }
    }

    func run() async throws {
        let target = url ?? Self.defaultURL()
        let outcome = await Self.probe(url: target, timeoutSeconds: timeout)
        switch outcome {
        case .success:
            if !quiet { print("healthy: \(target)") }
        case .failure(let reason):
            if !quiet { FileHandle.standardError.write(Data("unhealthy: \(target): \(reason)\n".utf8)) }
            throw ExitCode(1)
        }
    }

    enum Outcome: Equatable {
        case success
        case failure(String)
    }

    static func probe(url: String, timeoutSeconds: Double) async -> Outcome {
        let milliseconds = Int64((timeoutSeconds * 1000).rounded(.up))
        // A client of its own, not `HTTPClient.shared`: no proxy from the environment, and the
        // connect timeout bounded by the same deadline as the whole request.
        var configuration = HTTPClient.Configuration()
        configuration.timeout = .init(connect: .milliseconds(milliseconds), read: .milliseconds(milliseconds))
        configuration.redirectConfiguration = .disallow
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        let outcome: Outcome
        do {
            var request = HTTPClientRequest(url: url)
            request.method = .GET
            request.headers.add(name: "Accept", value: "application/json")
            let response = try await client.execute(request, timeout: .milliseconds(milliseconds))
            let body = try await response.body.collect(upTo: 64 * 1024)
            if response.status != .ok {
                outcome = .failure("HTTP \(response.status.code)")
            } else if isOK(Data(body.readableBytesView)) {
                outcome = .success
            } else {
                outcome = .failure("HTTP 200 without {\"status\":\"ok\"}")
            }
        } catch {
            outcome = .failure("\(error)")
        }
        try? await client.shutdown()
        return outcome
    }

    static func isOK(_ body: Data) -> Bool {
        guard let object = try? JSONSerialization.jsonObject(with: body) as? [String: Any] else { return false }
        return object["status"] as? String == "ok"
    }
}
