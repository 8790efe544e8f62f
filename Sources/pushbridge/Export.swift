import ArgumentParser
import AsyncHTTPClient
import Foundation
import PushbridgeConfig
import PushbridgeServer
import PushbridgeTools
import Storage

extension PushbridgeTools.Export.Format: ExpressibleByArgument {}

struct Export: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Every device status of an app as NDJSON or CSV (ids and hashes only), from a running server or read-only from the store.")

    @Option(name: .long, help: "App code.")
    var app: String

    @Option(name: .long, help: "Only devices in this state (pending, registered, retrying, failed, unregistered).")
    var state: String?

    @Option(name: .long, help: "ndjson (one status document per line) or csv (one row per device, nested members by dotted path).")
    var format: PushbridgeTools.Export.Format = .ndjson

    @Option(name: .long, help: "Base URL of a running server (default: read the SQLite store named by the configuration).")
    var url: String?

    @Option(name: .long, help: "API key, when the app has keys (or PUSHBRIDGE_API_KEY).")
    var key: String?

    @Option(name: .long, help: "YAML configuration file (default: config/pushbridge.yaml if present).")
    var config: String?

    @Option(name: .long, help: "Write to this file (default: standard output). It appears only once the export is complete.")
    var output: String?

    func run() async throws {
        var http: HTTPClient?
        var store: (any DeviceStore)?
        let source: PushbridgeTools.Export.Source
        if let url {
            let client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup)
            http = client
            source = .api(http: client, baseURL: url, apiKey: key ?? ProcessInfo.processInfo.environment["PUSHBRIDGE_API_KEY"])
        } else {
            let settings = try ConfigLoader.load(file: configurationFile(config))
            guard let path = settings.sqlitePath, FileManager.default.fileExists(atPath: path) else {
                throw ValidationError("no SQLite store at \(settings.sqlitePath ?? settings.storageURL); pass --url to ask a running server")
            }
            let opened = try SQLiteDeviceStore(path: path, sealer: try BridgeServer.sealer(settings, sqlitePath: path), readOnly: true)
            store = opened
            source = .store(opened)
        }
        do {
            try await export(source)
        } catch {
            try? await http?.shutdown()
            try? await store?.close()
            throw (error as? ValidationError) ?? ValidationError("\(error)")
        }
        try await http?.shutdown()
        try await store?.close()
    }

    private func export(_ source: PushbridgeTools.Export.Source) async throws {
        let export = try PushbridgeTools.Export(source: source, appCode: app, state: state, format: format)
        // To a file: written beside it and renamed at the end, so a failed export leaves no file that looks complete.
        let partial = output.map { $0 + ".partial" }
        let handle: FileHandle
        if let partial {
            guard FileManager.default.createFile(atPath: partial, contents: nil) else { throw ValidationError("cannot create \(partial)") }
            handle = try FileHandle(forWritingTo: URL(fileURLWithPath: partial))
        } else {
            handle = FileHandle.standardOutput
        }
        let meter = isatty(STDERR_FILENO) == 1 ? ProgressMeter(total: try await export.expectedCount(), isTerminal: true, unit: "devices") : nil
        do {
            let written = try await export.run(write: { try handle.write(contentsOf: $0) }, progress: { meter?.update($0) })
            meter?.finish()
            if let output, let partial {
                try handle.close()
                if FileManager.default.fileExists(atPath: output) { try FileManager.default.removeItem(atPath: output) }
                try FileManager.default.moveItem(atPath: partial, toPath: output)
                FileHandle.standardError.write(Data("exported \(written) devices of \(app) to \(output)\n".utf8))
            }
        } catch {
            if let partial {
                try? handle.close()
                try? FileManager.default.removeItem(atPath: partial)
            }
            throw error
        }
    }
}
