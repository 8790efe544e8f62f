import ArgumentParser
import AsyncHTTPClient
import Foundation
import PushbridgeConfig
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
        if let output {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: output, isDirectory: &isDirectory), isDirectory.boolValue {
                throw ValidationError("--output \(output) is a directory; name a file")
            }
        }
        var http: HTTPClient?
        var store: (any DeviceStore)?
        let source: PushbridgeTools.Export.Source
        if let url {
            let client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup)
            http = client
            source = .api(http: client, baseURL: url, apiKey: key ?? ProcessInfo.processInfo.environment["PUSHBRIDGE_API_KEY"])
        } else {
            let opened = try readOnlyStore(try ConfigLoader.load(file: configurationFile(config)))
            store = opened
            source = .store(opened)
        }
        do {
            try await export(source)
        } catch {
            try? await http?.shutdown()
            try? await store?.close()
            // A bad --state is the command line's mistake (exit 64, with the usage); anything later is a failure (exit 1).
            if error is ValidationError { throw error }
            FileHandle.standardError.write(Data("Error: \(error)\n".utf8))
            throw ExitCode.failure
        }
        try await http?.shutdown()
        try await store?.close()
    }

    private func export(_ source: PushbridgeTools.Export.Source) async throws {
        let export: PushbridgeTools.Export
        do {
            export = try PushbridgeTools.Export(source: source, appCode: app, state: state, format: format)
        } catch {
            throw ValidationError("\(error)")
        }
        // To a file: written beside it, flushed, then renamed over it (atomic; a directory is refused), so a failed
        // export leaves no file that looks complete. A `.partial` file another export is writing is not taken over.
        let partial = output.map { $0 + ".partial" }
        let handle: FileHandle
        if let partial {
            let fd = open(partial, O_WRONLY | O_CREAT | O_EXCL, 0o644)
            guard fd >= 0 else {
                throw ExportFailure(
                    message: "cannot create \(partial): \(String(cString: strerror(errno))) (another export may be writing it; if none is, a crashed one left it: remove it)")
            }
            handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        } else {
            handle = FileHandle.standardOutput
        }
        do {
            let meter = isatty(STDERR_FILENO) == 1 ? ProgressMeter(total: try await export.expectedCount(), isTerminal: true, unit: "devices") : nil
            let written = try await export.run(write: { try handle.write(contentsOf: $0) }, progress: { meter?.update($0) })
            meter?.finish()
            if let output, let partial {
                try handle.synchronize()
                try handle.close()
                guard rename(partial, output) == 0 else { throw ExportFailure(message: "cannot rename \(partial) to \(output): \(String(cString: strerror(errno)))") }
                FileHandle.standardError.write(Data("exported \(written) devices of \(app) to \(output)\n".utf8))
            }
        } catch {
            if let partial {
                try? handle.close()
                unlink(partial)
            }
            throw error
        }
    }
}

/// A failure after the command line was read: exit 1 with the message, not the usage.
struct ExportFailure: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}
