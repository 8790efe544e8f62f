import Configuration
import Foundation
import MobileEngage
import Workflow
import Yams

/// Reads the YAML file and the `PUSHBRIDGE_*` environment through swift-configuration.
///
/// Two things are done by hand, on purpose:
/// - swift-configuration's YAML snapshot only takes scalars and scalar arrays, and the contract's
///   `apps` is a list of objects; so the file is parsed with Yams, its scalars are handed to an
///   `InMemoryProvider`, and `apps` is read here.
/// - the contract names variables by upper-casing each key part (`PUSHBRIDGE_EMARSYS_CLIENTSERVICEURL`),
///   while swift-configuration splits camelCase (`EMARSYS_CLIENT_SERVICE_URL`); both spellings are
///   accepted and mapped onto the library's provider.
public enum ConfigLoader {
    /// Every scalar key of the file. Environment overrides exist for exactly these.
    static let keys: [String] = [
        "http.host", "http.port", "metrics.port", "instance.id",
        "storage.url", "storage.encryptionKey", "storage.encryptionKeyFile", "storage.poolSize", "storage.timeoutMs",
        "emarsys.sandbox", "emarsys.clientServiceURL", "emarsys.eventServiceURL", "emarsys.eventsAPIVersion",
        "emarsys.requestTimeoutSeconds", "emarsys.maxConcurrentRequests", "emarsys.sdkVersion", "emarsys.refreshReplayDelayMs",
        "emarsys.retry.initialDelayMs", "emarsys.retry.maxDelayMs",
        "emarsys.sandboxContactTokenLifetimeSeconds", "emarsys.sandboxAllowedOrigins", "emarsys.leaseSeconds",
        "limits.maxQueuedIntents", "limits.maxQueuedIntentsPerApp",
        "providers.directory",
        "log.level", "log.format",
        "shutdown.drainSeconds", "shutdown.deadlineSeconds",
        "webhooks.maxAgeHours", "webhooks.timeoutSeconds", "webhooks.maxBacklog", "webhooks.retry.initialDelayMs", "webhooks.retry.maxDelayMs", "history.perDevice", "history.maxAgeDays",
    ]

    public static func load(file: String?, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> BridgeConfiguration {
        var tree: [String: Any] = [:]
        if let file {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                throw ConfigError(key: "--config", message: "cannot read \(file)")
            }
            do {
                if let loaded = try Yams.load(yaml: text) {
                    guard let map = loaded as? [String: Any] else { throw ConfigError(key: "(file)", message: "\(file) must hold a mapping at the top level") }
                    tree = map
                }
            } catch let e as ConfigError {
                throw e
            } catch {
                throw ConfigError(key: "(file)", message: "\(file) is not valid YAML: \(error)")
            }
        }
        let known = Set(keys + ["apps"] + keys.map { String($0.split(separator: ".")[0]) })
        try checkUnknownKeys(tree, prefix: "", known: known)

        var values: [AbsoluteConfigKey: ConfigValue] = [:]
        for key in keys {
            guard let raw = lookup(tree, key) else { continue }
            values[AbsoluteConfigKey(key.split(separator: ".").map(String.init))] = try configValue(raw, key: key)
        }
        var env: [String: String] = [:]
        for key in keys {
            let parts = key.split(separator: ".").map(String.init)
            let contractName = "PUSHBRIDGE_" + parts.map { $0.uppercased() }.joined(separator: "_")
            let libraryName = libraryEnvName(parts)
            if let v = environment["PUSHBRIDGE_" + libraryName] ?? environment[contractName] {
                env[libraryName] = v
            }
        }
        let reader = ConfigReader(providers: [
            EnvironmentVariablesProvider(environmentVariables: env),
            InMemoryProvider(name: file ?? "defaults", values: values),
        ])
        let present = Set(keys.filter { key in
            values[AbsoluteConfigKey(key.split(separator: ".").map(String.init))] != nil
                || env[libraryEnvName(key.split(separator: ".").map(String.init))] != nil
        })
        return try build(reader: reader, present: present, apps: tree["apps"], environment: environment)
    }

    /// Reads every key through the reader. A key that is set but does not convert to its type is an
    /// error naming the key (the reader's defaulting accessors would silently fall back).
    static func build(reader: ConfigReader, present: Set<String>, apps rawApps: Any?, environment: [String: String]) throws -> BridgeConfiguration {
        var c = BridgeConfiguration()
        func read<T>(_ key: String, _ def: T, _ message: String, _ get: (ConfigKey) throws -> T) throws -> T {
            guard present.contains(key) else { return def }
            do { return try get(ConfigKey(key)) } catch { throw ConfigError(key: key, message: message) }
        }
        func int(_ key: String, _ def: Int, min: Int, max: Int = Int.max) throws -> Int {
            let v = try read(key, def, "must be a whole number") { try reader.requiredInt(forKey: $0) }
            guard v >= min && v <= max else { throw ConfigError(key: key, message: "must be between \(min) and \(max), got \(v)") }
            return v
        }
        func string(_ key: String, _ def: String) throws -> String {
            try read(key, def, "must be a string") { try reader.requiredString(forKey: $0) }
        }
        func bool(_ key: String, _ def: Bool) throws -> Bool {
            try read(key, def, "must be true or false") { try reader.requiredBool(forKey: $0) }
        }
        func double(_ key: String, _ def: Double) throws -> Double {
            try read(key, def, "must be a number") { k in
                if let d = try? reader.requiredDouble(forKey: k) { return d }
                return Double(try reader.requiredInt(forKey: k))
            }
        }
        func url(_ key: String, _ def: String) throws -> String {
            let v = try string(key, def)
            guard let u = URL(string: v), let scheme = u.scheme, ["http", "https"].contains(scheme.lowercased()), u.host != nil else {
                throw ConfigError(key: key, message: "must be an http:// or https:// URL, got '\(v)'")
            }
            return v
        }

        c.http.host = try string("http.host", c.http.host)
        c.http.port = try int("http.port", c.http.port, min: 0, max: 65535)
        if present.contains("metrics.port") {
            c.metrics.port = try int("metrics.port", 0, min: 0, max: 65535)
            if c.metrics.port == c.http.port && c.http.port != 0 {
                throw ConfigError(key: "metrics.port", message: "must differ from http.port")
            }
        }
        if present.contains("instance.id") {
            let id = try string("instance.id", "")
            guard (1...128).contains(id.count), id.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "._:-".contains($0)) }) else {
                throw ConfigError(key: "instance.id", message: "must be 1 to 128 characters of A-Z, a-z, 0-9, '.', '_', ':' or '-'")
            }
            c.instanceId = id
        }
        c.storageURL = try string("storage.url", c.storageURL)
        guard c.storageURL.hasPrefix("sqlite://") || c.storageURL.hasPrefix("postgres://") || c.storageURL.hasPrefix("postgresql://") else {
            throw ConfigError(key: "storage.url", message: "must start with sqlite:// or postgres://")
        }
        if c.storageURL.hasPrefix("sqlite://") && c.storageURL.count == "sqlite://".count {
            throw ConfigError(key: "storage.url", message: "names no file after sqlite://")
        }
        let key = try string("storage.encryptionKey", "")
        c.encryptionKey = key.isEmpty ? nil : key
        let keyFile = try string("storage.encryptionKeyFile", "")
        c.encryptionKeyFile = keyFile.isEmpty ? nil : keyFile
        c.emarsys.sandbox = try bool("emarsys.sandbox", c.emarsys.sandbox)
        c.emarsys.clientServiceURL = try url("emarsys.clientServiceURL", c.emarsys.clientServiceURL)
        c.emarsys.eventServiceURL = try url("emarsys.eventServiceURL", c.emarsys.eventServiceURL)
        if present.contains("emarsys.eventsAPIVersion") {
            guard let version = MEEventsAPIVersion(rawValue: try string("emarsys.eventsAPIVersion", "")) else {
                throw ConfigError(key: "emarsys.eventsAPIVersion", message: "must be v3 or v4")
            }
            c.emarsys.eventsAPIVersion = version
        }
        c.emarsys.sdkVersion = try string("emarsys.sdkVersion", c.emarsys.sdkVersion)
        guard (1...64).contains(c.emarsys.sdkVersion.count), c.emarsys.sdkVersion.allSatisfy({ $0.isASCII && !$0.isWhitespace && !$0.isNewline }) else {
            throw ConfigError(key: "emarsys.sdkVersion", message: "must be 1 to 64 printable characters without spaces, like 3.11.0")
        }
        c.emarsys.refreshReplayDelayMs = try int("emarsys.refreshReplayDelayMs", c.emarsys.refreshReplayDelayMs, min: 0, max: 60_000)
        c.emarsys.requestTimeoutSeconds = try double("emarsys.requestTimeoutSeconds", c.emarsys.requestTimeoutSeconds)
        guard c.emarsys.requestTimeoutSeconds > 0 && c.emarsys.requestTimeoutSeconds <= 300 else {
            throw ConfigError(key: "emarsys.requestTimeoutSeconds", message: "must be above 0 and at most 300")
        }
        c.emarsys.maxConcurrentRequests = try int("emarsys.maxConcurrentRequests", c.emarsys.maxConcurrentRequests, min: 1, max: 10_000)
        let initial = try int("emarsys.retry.initialDelayMs", c.emarsys.retry.initialDelayMs, min: 1)
        let maxDelay = try int("emarsys.retry.maxDelayMs", c.emarsys.retry.maxDelayMs, min: 1)
        guard maxDelay >= initial else { throw ConfigError(key: "emarsys.retry.maxDelayMs", message: "must not be below emarsys.retry.initialDelayMs") }
        c.emarsys.retry = RetryPolicy(initialDelayMs: initial, maxDelayMs: maxDelay)
        c.emarsys.sandboxContactTokenLifetimeSeconds = try int("emarsys.sandboxContactTokenLifetimeSeconds", c.emarsys.sandboxContactTokenLifetimeSeconds, min: 1)
        c.emarsys.sandboxAllowedOrigins = try Self.origins(string("emarsys.sandboxAllowedOrigins", c.emarsys.sandboxAllowedOrigins.joined(separator: ",")))
        c.storagePoolSize = try int("storage.poolSize", c.storagePoolSize, min: 2, max: 1000)
        c.storageTimeoutMs = try int("storage.timeoutMs", c.storageTimeoutMs, min: 100, max: 300_000)
        c.emarsys.leaseSeconds = try int("emarsys.leaseSeconds", c.emarsys.leaseSeconds, min: 1, max: 86_400)
        c.limits.maxQueuedIntents = try int("limits.maxQueuedIntents", c.limits.maxQueuedIntents, min: 1)
        c.limits.maxQueuedIntentsPerApp = try int("limits.maxQueuedIntentsPerApp", c.limits.maxQueuedIntentsPerApp, min: 1)
        let dir = try string("providers.directory", c.providersDirectory ?? "")
        c.providersDirectory = dir.isEmpty ? nil : dir
        c.logLevel = try string("log.level", c.logLevel)
        guard ["trace", "debug", "info", "notice", "warning", "error", "critical"].contains(c.logLevel) else {
            throw ConfigError(key: "log.level", message: "must be one of trace, debug, info, notice, warning, error, critical")
        }
        c.logFormat = try string("log.format", c.logFormat)
        guard ["text", "json"].contains(c.logFormat) else { throw ConfigError(key: "log.format", message: "must be text or json") }
        c.shutdownDrainSeconds = try double("shutdown.drainSeconds", c.shutdownDrainSeconds)
        guard (0...300).contains(c.shutdownDrainSeconds) else { throw ConfigError(key: "shutdown.drainSeconds", message: "must be between 0 and 300") }
        c.shutdownDeadlineSeconds = try double("shutdown.deadlineSeconds", c.shutdownDeadlineSeconds)
        guard (0...3600).contains(c.shutdownDeadlineSeconds) else { throw ConfigError(key: "shutdown.deadlineSeconds", message: "must be between 0 and 3600") }
        c.webhooks.maxAgeHours = try int("webhooks.maxAgeHours", c.webhooks.maxAgeHours, min: 1, max: 24 * 30)
        c.webhooks.maxBacklog = try int("webhooks.maxBacklog", c.webhooks.maxBacklog, min: 1, max: 100_000_000)
        c.webhooks.retryInitialDelayMs = try int("webhooks.retry.initialDelayMs", c.webhooks.retryInitialDelayMs, min: 1)
        c.webhooks.retryMaxDelayMs = try int("webhooks.retry.maxDelayMs", c.webhooks.retryMaxDelayMs, min: 1)
        guard c.webhooks.retryMaxDelayMs >= c.webhooks.retryInitialDelayMs else {
            throw ConfigError(key: "webhooks.retry.maxDelayMs", message: "must not be below webhooks.retry.initialDelayMs")
        }
        c.webhooks.timeoutSeconds = try double("webhooks.timeoutSeconds", c.webhooks.timeoutSeconds)
        guard c.webhooks.timeoutSeconds > 0 && c.webhooks.timeoutSeconds <= 300 else {
            throw ConfigError(key: "webhooks.timeoutSeconds", message: "must be above 0 and at most 300")
        }
        c.history.perDevice = try int("history.perDevice", c.history.perDevice, min: 1, max: 10_000)
        c.history.maxAgeDays = try int("history.maxAgeDays", c.history.maxAgeDays, min: 1, max: 3650)
        if let rawApps { c.apps = try parseApps(rawApps, environment: environment) }
        return c
    }

    static func parseApps(_ raw: Any, environment: [String: String]) throws -> [BridgeConfiguration.App] {
        guard let list = raw as? [Any] else { throw ConfigError(key: "apps", message: "must be a list of apps") }
        var apps: [BridgeConfiguration.App] = []
        for (i, item) in list.enumerated() {
            let at = "apps[\(i)]"
            guard let map = item as? [String: Any] else { throw ConfigError(key: at, message: "must be a mapping") }
            let known = [
                "code", "contactFieldId", "anonymousContacts", "startEvent", "apiKeys", "apiKeysEnv", "clientPath", "eventsAPIVersion", "webhooks",
                "retention", "meRequestsPerSecond",
            ]
            for k in map.keys where !known.contains(k) {
                throw ConfigError(key: "\(at).\(k)", message: "is not a known setting")
            }
            guard let code = map["code"] as? String, Identifiers.isIdentifier(code, maxLength: 64, punctuation: "-") else {
                throw ConfigError(key: "\(at).code", message: "must be an app code like EMS12-34567")
            }
            if apps.contains(where: { $0.code == code }) { throw ConfigError(key: "\(at).code", message: "\(code) is configured twice") }
            let fieldId = map["contactFieldId"] ?? 3
            guard let contactFieldId = fieldId as? Int, contactFieldId > 0 else {
                throw ConfigError(key: "\(at).contactFieldId", message: "must be a positive whole number")
            }
            let anon = map["anonymousContacts"] ?? true
            guard let anonymousContacts = anon as? Bool else { throw ConfigError(key: "\(at).anonymousContacts", message: "must be true or false") }
            let start = map["startEvent"] ?? "app:start"
            guard let startName = start as? String, ["app:start", "session:start", "none"].contains(startName) else {
                throw ConfigError(key: "\(at).startEvent", message: "must be app:start, session:start or none")
            }
            var keys: [String] = []
            if let rawKeys = map["apiKeys"] {
                guard let list = rawKeys as? [Any], list.allSatisfy({ $0 is String }) else {
                    throw ConfigError(key: "\(at).apiKeys", message: "must be a list of strings")
                }
                keys = list.compactMap { $0 as? String }
            }
            if let envName = map["apiKeysEnv"] {
                guard let envName = envName as? String else { throw ConfigError(key: "\(at).apiKeysEnv", message: "must be a variable name") }
                keys += (environment[envName] ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            }
            if keys.contains(where: { $0.count < 16 }) {
                throw ConfigError(key: "\(at).apiKeys", message: "keys must be at least 16 characters long")
            }
            let rawPath = map["clientPath"] ?? "apps"
            guard let pathName = rawPath as? String, let clientPath = MECodePath(rawValue: pathName) else {
                throw ConfigError(key: "\(at).clientPath", message: "must be apps or domains")
            }
            var eventsVersion: MEEventsAPIVersion?
            if let rawVersion = map["eventsAPIVersion"] {
                guard let name = rawVersion as? String, let version = MEEventsAPIVersion(rawValue: name) else {
                    throw ConfigError(key: "\(at).eventsAPIVersion", message: "must be v3 or v4")
                }
                eventsVersion = version
            }
            var app = BridgeConfiguration.App(
                code: code, contactFieldId: contactFieldId, anonymousContacts: anonymousContacts, startEvent: startName == "none" ? nil : startName,
                apiKeys: keys, clientPath: clientPath, eventsAPIVersion: eventsVersion)
            if let rawHooks = map["webhooks"] { app.webhooks = try parseWebhooks(rawHooks, at: "\(at).webhooks", environment: environment) }
            if let rawRetention = map["retention"] { app.retention = try parseRetention(rawRetention, at: "\(at).retention") }
            if let rawRate = map["meRequestsPerSecond"] {
                guard let rate = rawRate as? Int, (1...100_000).contains(rate) else {
                    throw ConfigError(key: "\(at).meRequestsPerSecond", message: "must be a whole number from 1 to 100000")
                }
                app.meRequestsPerSecond = rate
            }
            apps.append(app)
        }
        let allKeys = apps.flatMap(\.apiKeys)
        if Set(allKeys).count != allKeys.count { throw ConfigError(key: "apps", message: "one API key is given to two apps") }
        return apps
    }

    static func lookup(_ tree: [String: Any], _ key: String) -> Any? {
        var node: Any? = tree
        for part in key.split(separator: ".") {
            node = (node as? [String: Any])?[String(part)]
        }
        return node
    }

    static func configValue(_ raw: Any, key: String) throws -> ConfigValue {
        switch raw {
        case let b as Bool: return ConfigValue(.bool(b), isSecret: false)
        case let i as Int: return ConfigValue(.int(i), isSecret: false)
        case let d as Double: return ConfigValue(.double(d), isSecret: false)
        case let s as String: return ConfigValue(.string(s), isSecret: key == "storage.url" || key == "storage.encryptionKey")
        default: throw ConfigError(key: key, message: "must be a single value")
        }
    }

    /// Rejects keys the bridge does not know: a typo must not silently fall back to a default.
    static func checkUnknownKeys(_ node: [String: Any], prefix: String, known: Set<String>) throws {
        for (k, v) in node {
            let path = prefix.isEmpty ? k : "\(prefix).\(k)"
            if path == "apps" { continue }
            guard known.contains(path) || known.contains(where: { $0.hasPrefix(path + ".") }) else {
                throw ConfigError(key: path, message: "is not a known setting")
            }
            if let child = v as? [String: Any] { try checkUnknownKeys(child, prefix: path, known: known) }
        }
    }

    /// `emarsys.sandboxAllowedOrigins`: `*`, empty (no CORS), or comma-separated origins (`scheme://host[:port]`).
    public static func origins(_ raw: String) throws -> [String] {
        let list = raw.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        for origin in list where origin != "*" {
            guard let u = URL(string: origin), let scheme = u.scheme, ["http", "https"].contains(scheme.lowercased()), u.host != nil,
                  u.path.isEmpty, u.query == nil, !origin.hasSuffix("/") else {
                throw ConfigError(key: "emarsys.sandboxAllowedOrigins", message: "must be *, or origins such as https://shop.example or http://localhost:3000 separated by commas, got '\(origin)'")
            }
        }
        return list
    }

    /// swift-configuration's environment name of a key: camelCase split, upper-cased, `_` between parts.
    static func libraryEnvName(_ parts: [String]) -> String {
        parts.map { part -> String in
            var out = ""
            var previous: Character?
            for ch in part {
                if let p = previous, p.isLowercase, ch.isUppercase { out.append("_") }
                out.append(ch)
                previous = ch
            }
            return out.uppercased()
        }.joined(separator: "_")
    }
}

public struct ConfigError: Error, CustomStringConvertible {
    public var key: String
    public var message: String
    public init(key: String, message: String) {
        self.key = key
        self.message = message
    }
    public var description: String { "configuration error: \(key) \(message)" }
}
