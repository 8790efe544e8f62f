import Foundation
import Hummingbird
import Logging
import Synchronization

/// A local, strict Mobile Engage v3 backend for development, demos, tests and benchmarks.
///
/// It serves the ME client and event endpoints the way the real backend does (tokens, client state, status
/// codes), records everything it sees for inspection, and injects faults on demand. All state sits behind one
/// `Mutex`, so a single instance can be hit concurrently from many connections.
public final class MESandbox: Sendable {
    let configuration: SandboxConfiguration
    let logger: Logger
    let signer = TokenSigner()
    let state: Mutex<SandboxState>

    /// Largest request body accepted; the SDKs' bodies are a few KiB, so this only stops abuse.
    static let maxBodySize = 1 << 20

    public init(configuration: SandboxConfiguration = .init(), logger: Logger = Logger(label: "me-sandbox")) {
        self.configuration = configuration
        self.logger = logger
        self.state = Mutex(SandboxState(historyCapacity: configuration.maxRequestLog, strict: configuration.strict))
    }

    /// Registers every sandbox route on `router` below `prefix` ("" or e.g. "/sandbox"): the ME routes and the
    /// `/_sandbox/` inspection routes.
    ///
    /// With `BasicRequestContext` the fault mode "close" cannot reach the connection; see `dropResponse`.
    public func addRoutes(to router: Router<BasicRequestContext>, prefix: String) {
        registerRoutes(on: router, prefix: prefix)
    }

    /// Same as `addRoutes(to:prefix:)` for any request context. Contexts conforming to
    /// `SandboxConnectionClosing` (like `SandboxRequestContext`) get a true connection close for "close" faults.
    public func addRoutes<Context: RequestContext>(to router: Router<Context>, prefix: String) {
        registerRoutes(on: router, prefix: prefix)
    }

    /// Standalone server (what `pushbridge sandbox --port N` runs): serves the sandbox at the root of
    /// `host:port` until the task is cancelled or the process gets SIGTERM/SIGINT.
    /// - Parameter onServerRunning: called with the bound port (useful with port 0).
    public func run(host: String, port: Int, onServerRunning: (@Sendable (Int) async -> Void)? = nil) async throws {
        let router = Router(context: SandboxRequestContext.self)
        registerRoutes(on: router, prefix: "")
        let app = Application(
            router: router,
            configuration: .init(address: .hostname(host, port: port), serverName: "me-sandbox"),
            onServerRunning: { channel in
                await onServerRunning?(channel.localAddress?.port ?? port)
            },
            logger: logger
        )
        logger.info("ME sandbox starting", metadata: ["sandbox.host": "\(host)", "sandbox.port": "\(port)"])
        try await app.runService()
    }

    // MARK: Programmatic inspection (same data as the HTTP inspection routes)

    /// The client with this id, or `nil` when the sandbox never saw it.
    public func client(_ clientId: String) async -> SandboxClientView? {
        state.withLock { $0.clients[clientId]?.view }
    }

    /// The global request log, oldest first.
    public func requestLog() async -> [SandboxRequestRecord] {
        state.withLock { $0.log.elements }
    }

    /// The active faults in matching order, with their remaining counts.
    public func faults() async -> [SandboxFault] {
        state.withLock { $0.faults.faults }
    }

    /// The recorded invariant violations, oldest first (at most `configuration.maxRequestLog` of them).
    public func violations() async -> [SandboxViolation] {
        state.withLock { $0.violations.elements }
    }

    /// How many violations were recorded since the start or the last clear, including those the bounded list
    /// has dropped.
    public func violationCount() async -> Int {
        state.withLock { $0.violationCount }
    }

    /// Forgets the recorded violations and their count.
    public func clearViolations() async {
        state.withLock { $0.clearViolations() }
    }

    /// Turns strict mode on or off (see `SandboxConfiguration.strict`).
    public func setStrict(_ enabled: Bool) async {
        state.withLock { $0.strict = enabled }
    }

    /// Whether strict mode is on.
    public func isStrict() async -> Bool {
        state.withLock { $0.strict }
    }

    /// Forgets every client, token, fault, log entry and violation (strict mode stays as it is).
    public func reset() async {
        state.withLock { $0.reset() }
    }

    /// Makes every contact token issued so far expired.
    public func expireContactTokens() async {
        _ = state.withLock { $0.expireAllContactTokens() }
    }

    /// Revokes every refresh token issued so far.
    public func revokeRefreshTokens() async {
        _ = state.withLock { $0.revokeAllRefreshTokens() }
    }

    var environment: MEEnvironment {
        MEEnvironment(signer: signer, configuration: configuration, now: Date())
    }
}
