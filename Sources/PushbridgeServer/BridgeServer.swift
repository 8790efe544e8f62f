import AsyncHTTPClient
import Bridge
import ConcurrencySupport
import Foundation
import Hummingbird
import Logging
import MESandbox
import MobileEngage
import MobileEngageClient
import Prometheus
import PushTokens
import PushbridgeConfig
import ServerSupport
import ServiceLifecycle
import Storage
import UnixSignals
import Webhooks
import Workflow

/// The whole service, wired: storage, the engine, the HTTP API and, when configured, the embedded
/// ME sandbox. The executable and the integration tests use exactly this.
public final class BridgeServer: Sendable {
    public let configuration: BridgeConfiguration
    public let store: any DeviceStore
    public let engine: Engine
    /// The embedded sandbox, when `emarsys.sandbox` is true.
    public let sandbox: MESandbox?
    private let httpClient: HTTPClient
    let logger: Logger
    private let providers: ProviderRegistry
    private let portBox = OneShot<Int>()
    /// The port `/metrics` is served on when `metrics.port` is set, once it is.
    let metricsPortBox = OneShot<Int>()
    /// `process_*`, updated at each scrape.
    let processMetrics: ProcessMetrics
    /// This server's metrics registry (`GET /metrics`).
    public let registry = PrometheusCollectorRegistry()
    public let metrics: BridgeMetrics
    /// Failed storage operations, from the API and the engine: readiness and `pushbridge_storage_errors_total`.
    public let health: StorageHealth
    private let gate: ShutdownGate
    /// The PostgreSQL store, when `storage.url` is postgres://.
    private let postgres: PostgresDeviceStore?
    /// Delivers the webhook outbox (`apps[].webhooks`), with a client of its own: a dead endpoint never holds a
    /// connection the ME calls need.
    private let webhooks: WebhookDelivery
    private let webhookClient: HTTPClient
    /// Writes the devices' history in batches, and trims it.
    private let history: HistoryRecorder

    /// - Parameter wrapStore: wraps the store that the API and the engine use (the fault-injection tests put one
    ///   that fails on demand around the real store); nil in production.
    public init(
        configuration: BridgeConfiguration, logger: Logger,
        wrapStore: (@Sendable (any DeviceStore) -> any DeviceStore)? = nil
    ) async throws {
        self.configuration = configuration
        self.logger = logger
        var providers = ProviderRegistry.builtIn
        if let dir = configuration.providersDirectory {
            do {
                providers = try providers.merging(directory: dir)
            } catch {
                throw ConfigError(key: "providers.directory", message: "\(error)")
            }
        }
        self.providers = providers
        metrics = BridgeMetrics(factory: PrometheusMetricsFactory(registry: self.registry))
        processMetrics = ProcessMetrics(registry: registry)
        gate = ShutdownGate(drain: .milliseconds(Int64(configuration.shutdownDrainSeconds * 1000)))
        if let path = configuration.sqlitePath {
            let store = try SQLiteDeviceStore(path: path, sealer: try Self.sealer(configuration, sqlitePath: path))
            try await store.migrate()
            self.store = wrapStore?(store) ?? store
            postgres = nil
        } else {
            // PostgreSQL: the pool runs as a service of the group; migrations run once it does (`run`), and
            // the store holds every query until they succeeded.
            let store: PostgresDeviceStore
            do {
                store = try PostgresDeviceStore(
                    url: configuration.storageURL, poolSize: configuration.storagePoolSize, sealer: try Self.sealer(postgres: configuration), logger: logger)
            } catch let error as StorageError {
                if case .invalidKey = error { throw ConfigError(key: "storage.encryptionKey", message: error.description) }
                throw ConfigError(key: "storage.url", message: error.description)
            }
            self.store = wrapStore?(store) ?? store
            postgres = store
        }
        let pgStore = self.postgres

        var httpConfig = HTTPClient.Configuration()
        httpConfig.timeout = .init(connect: .seconds(5), read: .milliseconds(Int64(configuration.emarsys.requestTimeoutSeconds * 1000)))
        httpConfig.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = configuration.emarsys.maxConcurrentRequests
        httpConfig.decompression = .enabled(limit: .ratio(10))
        httpClient = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: httpConfig, backgroundActivityLogger: logger)

        let e = configuration.emarsys
        let me = MEClient(
            httpClient: httpClient,
            endpoints: MEEndpoints(clientServiceURL: e.clientServiceURL, eventServiceURL: e.eventServiceURL),
            sdkVersion: e.sdkVersion,
            requestTimeout: .milliseconds(Int64(e.requestTimeoutSeconds * 1000)), bridgeVersion: PushbridgeVersion.current)
        sandbox = e.sandbox
            ? MESandbox(configuration: SandboxConfiguration(
                contactTokenLifetime: .seconds(e.sandboxContactTokenLifetimeSeconds), allowedOrigins: e.sandboxAllowedOrigins), logger: logger)
            : nil
        let portBox = self.portBox
        let embedded = e.sandbox
        let host = configuration.http.host
        var engineConfig = EngineConfiguration(
            maxConcurrentRequests: e.maxConcurrentRequests, retry: e.retry,
            apps: Dictionary(uniqueKeysWithValues: configuration.apps.map { ($0.code, $0.policy(eventsAPIVersion: e.eventsAPIVersion)) }),
            sdkVersion: e.sdkVersion, lease: .seconds(e.leaseSeconds), refreshReplayDelayMs: e.refreshReplayDelayMs,
            storageTimeout: .milliseconds(configuration.storageTimeoutMs), instanceId: Self.instanceId(configuration))
        let webhookTargets = WebhookTarget.all(configuration)
        engineConfig.webhooks = WebhookTarget.routing(webhookTargets)
        engineConfig.rateLimiter = RateLimiter(rates: configuration.apps.reduce(into: [:]) { $0[$1.code] = $1.meRequestsPerSecond })
        let history = HistoryRecorder(store: self.store, perDevice: configuration.history.perDevice, metrics: metrics, logger: logger)
        self.history = history
        engineConfig.history = { history.record($0) }
        let health = StorageHealth(metrics: metrics)
        self.health = health
        engine = Engine(store: store, me: me, configuration: engineConfig, logger: logger, metrics: metrics, health: health, startGate: {
            try? await pgStore?.waitUntilReady()
            let port = (try? await portBox.value()) ?? 0
            if embedded {
                let base = "http://\(Self.loopbackHost(for: host)):\(port)/sandbox"
                me.endpoints.set(MEEndpoints(clientServiceURL: base, eventServiceURL: base))
            }
        })
        let w = configuration.webhooks
        var webhookHTTP = HTTPClient.Configuration()
        webhookHTTP.timeout = .init(connect: .seconds(5), read: .milliseconds(Int64(w.timeoutSeconds * 1000)))
        webhookHTTP.redirectConfiguration = .disallow
        webhookClient = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: webhookHTTP, backgroundActivityLogger: logger)
        webhooks = WebhookDelivery(
            store: self.store, targets: webhookTargets, http: webhookClient,
            settings: .init(
                timeout: .milliseconds(Int64(w.timeoutSeconds * 1000)),
                retry: WebhookRetry(
                    initialDelayMs: Int64(w.retryInitialDelayMs), maxDelayMs: Int64(w.retryMaxDelayMs), maxAgeMs: Int64(w.maxAgeHours) * 3_600_000),
                storageTimeout: .milliseconds(configuration.storageTimeoutMs), maxBacklog: w.maxBacklog),
            backlogFull: engineConfig.webhookBacklogFull, metrics: metrics, logger: logger, owner: engine.owner,
            history: { history.record($0) })
    }

    /// The key for device data at rest: the configured key, the configured key file, or (the embedded
    /// default) `pushbridge.key` beside the SQLite file, created on first start.
    public static func sealer(_ c: BridgeConfiguration, sqlitePath: String) throws -> Sealer {
        do {
            if let key = c.encryptionKey { return try Sealer(base64: key) }
            if let file = c.encryptionKeyFile { return try Sealer.fromKeyFile(file, create: false) }
            let dir = (sqlitePath as NSString).deletingLastPathComponent
            return try Sealer.fromKeyFile((dir.isEmpty ? "." : dir) + "/pushbridge.key", create: true)
        } catch let error as StorageError {
            throw ConfigError(key: "storage.encryptionKey", message: error.description)
        }
    }

    /// The key for PostgreSQL: configured only (there is no file beside a database to create one in).
    static func sealer(postgres c: BridgeConfiguration) throws -> Sealer {
        do {
            if let key = c.encryptionKey { return try Sealer(base64: key) }
            if let file = c.encryptionKeyFile { return try Sealer.fromKeyFile(file, create: false) }
        } catch let error as StorageError {
            throw ConfigError(key: "storage.encryptionKey", message: error.description)
        }
        throw ConfigError(
            key: "storage.encryptionKey",
            message: "a postgres:// store needs storage.encryptionKey (PUSHBRIDGE_STORAGE_ENCRYPTIONKEY) or storage.encryptionKeyFile: 32 bytes, base64 (`openssl rand -base64 32`), the same on every instance")
    }

    /// `instance.id`, else the host name and `http.port` (stable across restarts; two instances on one host have
    /// different ports). With port 0 (tests) a random suffix: nothing to recognise after a restart.
    static func instanceId(_ c: BridgeConfiguration) -> String {
        if let id = c.instanceId { return id }
        let host = ProcessInfo.processInfo.hostName.filter { $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) }
        return "\(host.isEmpty ? "host" : host):\(c.http.port == 0 ? String(UUID().uuidString.prefix(8)) : String(c.http.port))"
    }

    /// The address the bridge calls its own embedded sandbox on.
    static func loopbackHost(for host: String) -> String {
        switch host {
        case "0.0.0.0", "": "127.0.0.1"
        case "::": "[::1]"
        default: host.contains(":") ? "[\(host)]" : host
        }
    }

    /// The port the server listens on, once it does.
    public func port() async -> Int { (try? await portBox.value()) ?? 0 }

    func makeApplication() -> some ApplicationProtocol {
        let router = Router()
        // Outermost: every answer, problems included, gets its request id and is counted.
        router.add(middleware: ObservabilityMiddleware(metrics: metrics))
        router.add(middleware: ProblemMiddleware())
        let engine = self.engine
        let gate = self.gate
        let store = self.store
        let metrics = self.metrics
        let health = self.health
        var api = BridgeAPI(
            config: configuration, store: store, registry: providers,
            wake: { engine.wake() },
            readiness: Readiness(
                engineRunning: { engine.isRunning }, draining: { gate.isDraining }, limits: configuration.limits, health: health,
                webhooksFull: { [webhooks] in webhooks.backlogFullNow }),
            metrics: metrics, health: health, logger: logger,
            draining: { gate.isDraining },
            scrape: { [self] in await self.scrapeText() })
        let history = self.history
        api.history = { history.record($0) }
        api.seen = { history.seen($0, at: $1) }
        api.register(on: router)
        metrics.makeFamilies(
            routes: api.routes.map { (BridgeAPI.label(of: $0.path), $0.method.rawValue, BridgeAPI.usualStatus($0)) },
            apps: configuration.apps.map(\.code), version: PushbridgeVersion.current)
        sandbox?.addRoutes(to: router, prefix: "/sandbox")
        let portBox = self.portBox
        return Application(
            router: router,
            configuration: .init(address: .hostname(configuration.http.host, port: configuration.http.port), serverName: "pushbridge"),
            onServerRunning: { channel in
                portBox.succeed(channel.localAddress?.port ?? 0)
            },
            logger: logger)
    }

    /// Runs until a signal in `signals` arrives or `shutdown()` is called, then drains and closes.
    public func run(signals: [UnixSignal] = [.sigterm, .sigint]) async throws {
        // Shut down in reverse order: the gate turns /ready and writes to 503, the engine finishes its
        // ME calls in flight, the server stops listening, then the history writes what they recorded.
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: history), .init(service: makeApplication()), .init(service: engine), .init(service: webhooks),
            .init(service: Housekeeping(tasks: Housekeeping.tasks(store: store, historyMaxAgeDays: configuration.history.maxAgeDays), logger: logger)),
            .init(service: RetentionSweep(
                store: store, rules: RetentionSweep.rules(configuration),
                limits: QueueLimits(maxQueuedIntents: configuration.limits.maxQueuedIntents, maxQueuedIntentsPerApp: configuration.limits.maxQueuedIntentsPerApp),
                wake: { [engine = self.engine] in engine.wake() }, flushSeen: { [history = self.history] in await history.flushSeen() }, metrics: metrics,
                logger: logger)),
            .init(service: gate),
        ]
        if configuration.metrics.port != nil { services.insert(.init(service: makeMetricsApplication()), at: 1) }
        if let postgres {
            // First in the group, so it is the last to stop: the engine's final commits still reach the database.
            services.insert(.init(service: PostgresService(store: postgres, engine: engine, logger: logger)), at: 0)
        }
        var groupConfig = ServiceGroupConfiguration(
            services: services,
            gracefulShutdownSignals: signals,
            logger: logger)
        groupConfig.maximumGracefulShutdownDuration = .milliseconds(Int64((configuration.shutdownDeadlineSeconds + configuration.shutdownDrainSeconds) * 1000))
        let group = ServiceGroup(configuration: groupConfig)
        groupBox.set(group)
        do {
            // The HTTP server, the engine and their child tasks continue on the event loop that woke them.
            try await withTaskExecutorPreference(EventLoopExecutor()) {
                try await group.run()
            }
        } catch {
            try? await httpClient.shutdown()
            try? await webhookClient.shutdown()
            try? await store.close()
            throw error
        }
        try? await httpClient.shutdown()
        try? await webhookClient.shutdown()
        try await store.close()
    }

    private let groupBox = LockedValue<ServiceGroup?>(nil)

    /// Graceful shutdown: stop taking requests, finish the steps in flight, close storage.
    public func shutdown() async {
        await groupBox.get()?.triggerGracefulShutdown()
    }
}

extension BridgeServer {
    /// Gauges that are read from storage at scrape time: devices by state, queue depth, oldest due work.
    /// The configured `apps` are written too, at zero when they have no device (any more).
    static func recordGauges(_ overview: StoreOverview, apps: [String], metrics: BridgeMetrics) {
        for app in Set(overview.apps.keys).union(apps) {
            let counts = overview.apps[app] ?? StoreOverview.AppCounts()
            for state in DeviceStateName.allCases {
                metrics.gauge("pushbridge_devices", [("app", app), ("state", state.rawValue)], Double(counts.byState[state.rawValue] ?? 0))
            }
            metrics.gauge("pushbridge_queued_intents", [("app", app)], Double(counts.queuedIntents))
        }
        let age = overview.oldestDueAt.map { max(0, Date().timeIntervalSince($0)) } ?? 0
        metrics.gauge("pushbridge_oldest_due_intent_age_seconds", [], age)
    }
}

/// Runs the PostgreSQL pool, migrates once it runs (a failure ends the group, so the start fails with
/// the message), then listens for work queued by other instances and wakes the engine.
struct PostgresService: Service {
    let store: PostgresDeviceStore
    let engine: Engine
    let logger: Logger

    func run() async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await store.run() }
            do {
                try await store.migrate()
            } catch {
                logger.critical("storage: migrating PostgreSQL failed", metadata: ["error": "\(error)"])
                group.cancelAll()
                throw error
            }
            group.addTask { [engine] in
                await cancelWhenGracefulShutdown { await store.listenForWork { engine.wake() } }
            }
            try await group.next()
            group.cancelAll()
        }
    }
}
