import ArgumentParser
import AsyncHTTPClient
import Foundation
import PushbridgeConfig
import PushbridgeServer
import PushbridgeTools
import Storage

struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Device counts by app, state and provider, and the newest failures; or one device's status and history (--device).")

    @Option(name: .long, help: "Base URL of a running server (default: read the store named by the configuration).")
    var url: String?

    @Option(name: .long, help: "App code (repeatable; default: the apps of the configuration).")
    var app: [String] = []

    @Option(name: .long, help: "API key, when the apps have keys (or PUSHBRIDGE_API_KEY).")
    var key: String?

    @Option(name: .long, help: "YAML configuration file (default: config/pushbridge.yaml if present).")
    var config: String?

    @Option(name: .long, help: "A device id: show its status and history instead of the counts (with --app when several apps are configured).")
    var device: String?

    @Option(name: .long, help: "With --device: how many history entries, newest first (1 to 500).")
    var limit = 50

    @Flag(name: .long, help: "Print JSON instead of a table.")
    var json = false

    func run() async throws {
        let settings = try ConfigLoader.load(file: configurationFile(config))
        let apps = app.isEmpty ? settings.apps.map(\.code) : app
        if let device {
            try await showDevice(device, apps: apps, settings: settings)
            return
        }
        let report: StatusReport
        if let url {
            let http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup)
            do {
                report = try await StatusReport.from(url: url, apps: apps, apiKey: key ?? ProcessInfo.processInfo.environment["PUSHBRIDGE_API_KEY"], http: http)
            } catch {
                try? await http.shutdown()
                throw ValidationError("\(error)")
            }
            try await http.shutdown()
        } else {
            let store = try readOnlyStore(settings)
            report = try await StatusReport.from(store: store, apps: apps)
            try await store.close()
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
        } else {
            print(report.rendered(), terminator: "")
        }
    }

    /// `--device ID`: the device's status and history, from a running server or straight from the store.
    private func showDevice(_ device: String, apps: [String], settings: BridgeConfiguration) async throws {
        guard apps.count == 1, let appCode = apps.first else {
            throw ValidationError("--device needs one app: pass --app CODE (configured: \(apps.joined(separator: ", ")))")
        }
        guard (1...500).contains(limit) else { throw ValidationError("--limit must be from 1 to 500") }
        let report: DeviceReport?
        if let url {
            let http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup)
            do {
                report = try await DeviceReport.from(
                    url: url, app: appCode, device: device, limit: limit, apiKey: key ?? ProcessInfo.processInfo.environment["PUSHBRIDGE_API_KEY"], http: http)
            } catch {
                try? await http.shutdown()
                throw ValidationError("\(error)")
            }
            try await http.shutdown()
        } else {
            let store = try readOnlyStore(settings)
            do {
                report = try await DeviceReport.from(store: store, app: appCode, device: device, limit: limit)
            } catch {
                try? await store.close()
                throw error
            }
            try await store.close()
        }
        guard let report else { throw ValidationError("device \(appCode)/\(device) is not known") }
        if json {
            print(String(decoding: try report.json(), as: UTF8.self))
        } else {
            print(report.rendered(), terminator: "")
        }
    }
}

struct Import: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Bulk onboarding of existing tokens from CSV (deviceId,provider,token[,contactValue]) or JSON lines.")

    @Argument(help: "The file: .csv, or .jsonl / .ndjson for JSON lines.")
    var file: String

    @Option(name: .long, help: "Base URL of the running server.")
    var url = "http://127.0.0.1:8080"

    @Option(name: .long, help: "App code.")
    var app: String

    @Option(name: .long, help: "API key, when the app has keys (or PUSHBRIDGE_API_KEY).")
    var key: String?

    @Option(name: .long, help: "Requests in flight.")
    var concurrency = 8

    @Option(name: .long, help: "Where to write the rejected rows (line, deviceId, reason).")
    var rejects = "import-rejects.csv"

    func run() async throws {
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { throw ValidationError("cannot read \(file)") }
        let rows = ImportFile.parse(text, format: ImportFile.format(of: file))
        let http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup)
        let importer = Importer(http: http, baseURL: url, appCode: app, apiKey: key ?? ProcessInfo.processInfo.environment["PUSHBRIDGE_API_KEY"], concurrency: concurrency)
        let meter = ProgressMeter(total: rows.count, isTerminal: isatty(STDERR_FILENO) == 1)
        let summary: Importer.Summary
        do {
            summary = try await importer.run(rows) { meter.update($0.done) }
        } catch {
            try? await http.shutdown()
            throw error
        }
        try await http.shutdown()
        meter.finish()
        if !summary.rejected.isEmpty { try summary.rejectsCSV.write(toFile: rejects, atomically: true, encoding: .utf8) }
        print("imported \(summary.imported), unchanged \(summary.unchanged), rejected \(summary.rejected.count)"
            + (summary.rejected.isEmpty ? "" : " (reasons in \(rejects))"))
        for r in summary.rejected.prefix(5) { print("  line \(r.line): \(r.reason)") }
    }
}

/// The SQLite store the configuration names, opened read-only (safe beside a running server), for the tools that read
/// it instead of asking a server (`--url`).
func readOnlyStore(_ settings: BridgeConfiguration) throws -> SQLiteDeviceStore {
    guard let path = settings.sqlitePath, FileManager.default.fileExists(atPath: path) else {
        throw ValidationError("no SQLite store at \(settings.sqlitePath ?? settings.storageURL); pass --url to ask a running server")
    }
    return try SQLiteDeviceStore(path: path, sealer: try BridgeServer.sealer(settings, sqlitePath: path), readOnly: true)
}

/// A progress bar with rate and ETA on a terminal; a plain line every few seconds otherwise.
final class ProgressMeter: @unchecked Sendable {
    private let total: Int
    private let isTerminal: Bool
    private let unit: String
    private let started = Date()
    private var lastPrint = Date.distantPast
    private let lock = NSLock()

    init(total: Int, isTerminal: Bool, unit: String = "rows") {
        self.total = total
        self.isTerminal = isTerminal
        self.unit = unit
    }

    func update(_ done: Int) {
        lock.lock()
        defer { lock.unlock() }
        let now = Date()
        guard now.timeIntervalSince(lastPrint) >= (isTerminal ? 0.1 : 5) || done == total else { return }
        lastPrint = now
        let elapsed = max(now.timeIntervalSince(started), 0.001)
        let rate = Double(done) / elapsed
        let eta = rate > 0 ? Double(max(0, total - done)) / rate : 0
        let line = String(format: "%d/%d %@, %.0f %@/s, ETA %.0f s", done, total, unit, rate, unit, eta)
        if isTerminal {
            let width = 30
            let filled = total <= 0 ? width : min(width, width * done / total)  // more may come than counted
            let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
            FileHandle.standardError.write(Data("\r[\(bar)] \(line)   ".utf8))
        } else {
            FileHandle.standardError.write(Data("\(line)\n".utf8))
        }
    }

    func finish() {
        if isTerminal { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}
