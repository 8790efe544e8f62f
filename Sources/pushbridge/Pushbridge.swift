import ArgumentParser
import Foundation
import Logging
import MESandbox
import PushTokens
import PushbridgeConfig
import PushbridgeServer
import ServerSupport

@main
struct Pushbridge: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pushbridge",
        abstract: "Runs the Emarsys Mobile Engage SDK workflow on the server for every device your backend tells it about.",
        version: PushbridgeVersion.current,
        subcommands: [Serve.self, Sandbox.self, Normalize.self, Status.self, Import.self, Retry.self, Export.self, Healthcheck.self, Seed.self])
}

/// `config/pushbridge.yaml` when present, else the built-in defaults.
func configurationFile(_ explicit: String?) -> String? {
    if let explicit { return explicit }
    let fallback = "config/pushbridge.yaml"
    return FileManager.default.fileExists(atPath: fallback) ? fallback : nil
}

func bootstrapLogging(level: String, format: String = "text") -> Logger {
    let logLevel = Logger.Level(rawValue: level) ?? .info
    LoggingSystem.bootstrap { label in
        if format == "json" { return JSONLogHandler(label: label, level: logLevel) }
        var handler = StreamLogHandler.standardError(label: label)
        handler.logLevel = logLevel
        return MetadataDeferringLogHandler(handler)
    }
    return Logger(label: "pushbridge")
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the service (SQLite and the embedded ME sandbox by default).")

    @Option(name: .long, help: "YAML configuration file (default: config/pushbridge.yaml if present, else built-in defaults).")
    var config: String?

    func run() async throws {
        let settings: BridgeConfiguration
        do {
            settings = try ConfigLoader.load(file: configurationFile(config))
        } catch {
            throw ValidationError("\(error)")
        }
        let logger = bootstrapLogging(level: settings.logLevel, format: settings.logFormat)
        let server: BridgeServer
        do {
            server = try await BridgeServer(configuration: settings, logger: logger)
        } catch {
            throw ValidationError("\(error)")
        }
        Task {
            let port = await server.port()
            logger.notice("pushbridge listening", metadata: [
                "address": "\(settings.http.host):\(port)", "storage": "\(settings.sqlitePath ?? "postgres")",
                "sandbox": "\(settings.emarsys.sandbox ? "embedded at /sandbox" : "off")",
            ])
        }
        try await server.run()
    }
}

struct Sandbox: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the ME sandbox alone: a faithful local Mobile Engage v3 backend.")

    @Option(name: .long, help: "Port to listen on.")
    var port: Int = 8090

    @Option(name: .long, help: "Address to listen on.")
    var host: String = "127.0.0.1"

    @Option(name: .long, help: "YAML configuration file; emarsys.sandboxContactTokenLifetimeSeconds and log.level are read from it.")
    var config: String?

    @Flag(name: .long, help: "Strict mode: answer 409 to a request that breaks a workflow invariant (GET /_sandbox/violations lists them).")
    var strict = false

    @Option(name: .long, help: "Whose requests the bridge's invariants are checked on: pushbridge (its own traffic, by User-Agent) or all. The ME rules apply to every client.")
    var invariants: String = SandboxConfiguration.InvariantScope.pushbridge.rawValue

    @Option(name: .long, help: "Origins a browser page may call from (CORS), comma-separated; * for any, empty for none. Default: emarsys.sandboxAllowedOrigins (*).")
    var allowOrigins: String?

    func run() async throws {
        let settings = try ConfigLoader.load(file: configurationFile(config))
        guard let scope = SandboxConfiguration.InvariantScope(rawValue: invariants) else {
            throw ValidationError("--invariants must be pushbridge or all")
        }
        let origins: [String]
        do {
            origins = try allowOrigins.map(ConfigLoader.origins) ?? settings.emarsys.sandboxAllowedOrigins
        } catch let error as ConfigError {
            throw ValidationError("--allow-origins: \(error.message)")
        }
        let logger = bootstrapLogging(level: settings.logLevel)
        let sandbox = MESandbox(
            configuration: SandboxConfiguration(
                contactTokenLifetime: .seconds(settings.emarsys.sandboxContactTokenLifetimeSeconds), strict: strict,
                invariants: scope, allowedOrigins: origins),
            logger: logger)
        try await withTaskExecutorPreference(EventLoopExecutor()) {
            try await sandbox.run(host: host, port: port) { port in
                logger.notice("ME sandbox listening", metadata: ["address": "\(host):\(port)"])
            }
        }
    }
}

struct Normalize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Validate and canonicalise one push token; prints {provider, platform, pushToken, tokenHash}.")

    @Option(name: .long, help: "Provider id: fcm, apns, chrome, firefox, safari, edge, hms.")
    var provider: String

    @Option(name: .long, help: "APNs environment (production or sandbox).")
    var environment: String?

    @Option(name: .long, help: "Directory of provider descriptor files that add to or override the built-in ones.")
    var providersDirectory: String?

    @Argument(help: "The token, or a web push subscription as JSON.")
    var input: String

    func run() throws {
        var registry = ProviderRegistry.builtIn
        if let dir = providersDirectory {
            registry = try registry.merging(directory: dir)
        }
        do {
            let n = try registry.normalize(provider: provider, input: .text(input), environment: environment)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            let out = try encoder.encode(["provider": n.provider, "platform": n.platform, "pushToken": n.pushToken, "tokenHash": n.tokenHash])
            print(String(decoding: out, as: UTF8.self))
        } catch let rejection as TokenRejection {
            FileHandle.standardError.write(Data("rejected (\(rejection.rule)): \(rejection.reason)\n".utf8))
            throw ExitCode(1)
        }
    }
}
