import ArgumentParser
import AsyncHTTPClient
import Foundation
import PushbridgeTools

struct Retry: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Re-drive an app's failed devices on a running server, and follow them until they have left failed.")

    @Option(name: .long, help: "App code.")
    var app: String

    @Option(name: .long, help: "Only the devices that failed at this step (client, contact, refresh, event, push-token, push-token-removal).")
    var step: String?

    @Option(name: .long, help: "Base URL of the running server.")
    var url = "http://127.0.0.1:8080"

    @Option(name: .long, help: "API key, when the app has keys (or PUSHBRIDGE_API_KEY).")
    var key: String?

    @Option(name: .long, help: "Stop following after this many seconds (0: only ask for the re-drive).")
    var wait = 3600

    func run() async throws {
        let http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup)
        let redrive = Redrive(http: http, baseURL: url, appCode: app, apiKey: key ?? ProcessInfo.processInfo.environment["PUSHBRIDGE_API_KEY"])
        do {
            var progress = try await redrive.start(step: step)
            print("re-driving \(progress.retried) failed devices of \(app)" + (step.map { " (step \($0))" } ?? ""))
            guard wait > 0 else {
                try await http.shutdown()
                return
            }
            let meter = ProgressMeter(total: progress.retried, isTerminal: isatty(STDERR_FILENO) == 1, unit: "devices")
            let deadline = Date().addingTimeInterval(TimeInterval(wait))
            while progress.done < progress.retried, Date() < deadline {
                try await Task.sleep(for: .seconds(1))
                progress = try await redrive.poll(progress)
                meter.update(progress.done)
            }
            meter.finish()
            print("\(progress.done) of \(progress.retried) left failed" + (progress.stillFailed > 0 ? "; \(progress.stillFailed) still failed (see pushbridge status)" : ""))
        } catch {
            try? await http.shutdown()
            throw ValidationError("\(error)")
        }
        try await http.shutdown()
    }
}
