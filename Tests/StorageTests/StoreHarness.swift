import Crypto
import Foundation
import Logging
import Storage
import Testing
import Workflow

/// The PostgreSQL server for the tests, when `PUSHBRIDGE_TEST_POSTGRES_URL` names one (scripts/test.sh starts one).
let postgresURL: String? = ProcessInfo.processInfo.environment["PUSHBRIDGE_TEST_POSTGRES_URL"].flatMap { $0.isEmpty ? nil : $0 }

enum Backend: String, Sendable, CaseIterable {
    case sqlite, postgres
}

/// One storage location (a SQLite file, a PostgreSQL schema) and the store instances opened on it.
final class StoreHarness: @unchecked Sendable {
    let backend: Backend
    let key: Sealer
    private let location: String
    private var tasks: [Task<Void, any Error>] = []
    private var stores: [any DeviceStore] = []
    private let lock = NSLock()

    static func make(_ backend: Backend) async throws -> StoreHarness {
        let name = "t\(UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(16).lowercased())"
        let location: String
        switch backend {
        case .sqlite:
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pushbridge-storage-\(name)")
            location = dir.appendingPathComponent("store.sqlite").path
        case .postgres:
            guard let url = postgresURL else { throw StorageError.invalidURL("PUSHBRIDGE_TEST_POSTGRES_URL is not set") }
            location = url + (url.contains("?") ? "&" : "?") + "schema=\(name)"
        }
        return StoreHarness(backend: backend, location: location, key: Sealer(key: SymmetricKey(size: .bits256)))
    }

    /// Runs `body` on a fresh location of `backend`, and closes it (stores and files) whether `body` throws or not.
    static func withFresh(_ backend: Backend, _ body: (StoreHarness) async throws -> Void) async throws {
        let harness = try await make(backend)
        do {
            try await body(harness)
        } catch {
            await harness.close()
            throw error
        }
        await harness.close()
    }

    private init(backend: Backend, location: String, key: Sealer) {
        self.backend = backend
        self.location = location
        self.key = key
    }

    /// Opens an instance on this location and migrates it (the first one creates the schema).
    func open(key: Sealer? = nil) async throws -> any DeviceStore {
        let sealer = key ?? self.key
        switch backend {
        case .sqlite:
            let store = try SQLiteDeviceStore(path: location, sealer: sealer)
            lock.withLock { stores.append(store) }
            try await store.migrate()
            return store
        case .postgres:
            var logger = Logger(label: "storage-tests")
            logger.logLevel = .error
            let store = try PostgresDeviceStore(url: location, poolSize: 6, sealer: sealer, logger: logger)
            let task = Task { try await store.run() }
            lock.withLock {
                tasks.append(task)
                stores.append(store)
            }
            try await store.migrate()
            return store
        }
    }

    func close() async {
        let (tasks, stores) = lock.withLock { (self.tasks, self.stores) }
        for store in stores { try? await store.close() }
        for task in tasks { task.cancel() }
        for task in tasks { _ = await task.result }
        if backend == .sqlite {
            try? FileManager.default.removeItem(atPath: (location as NSString).deletingLastPathComponent)
        }
    }
}

/// Test data: the store takes tokens as the plugins produced them; any distinct strings do here.
enum Fixture {
    static let app = "EMS11-11111"
    static let otherApp = "EMS22-22222"
    static let policy = AppPolicy()
    static let limits = QueueLimits()

    static func key(_ id: String, app: String = app) -> DeviceKey { DeviceKey(appCode: app, deviceId: id) }

    static func token(_ name: String, provider: String = "fcm") -> TokenRef {
        TokenRef(provider: provider, platform: provider == "apns" ? "ios" : "android", pushToken: "push-\(name)", tokenHash: "hash-\(name)")
    }

    static func start(_ token: TokenRef? = nil, contact: ContactRequest? = nil) -> DeviceWrite {
        .start(StartIntent(
            provider: token?.provider ?? "fcm", platform: token?.platform ?? "android", token: token,
            info: DeviceInfo(applicationVersion: "1.0"), contact: contact, clientId: nil))
    }

    static func newClientId() -> String { UUID().uuidString.lowercased() }
}

extension DeviceStore {
    @discardableResult
    func put(_ write: DeviceWrite, _ key: DeviceKey, limits: QueueLimits = Fixture.limits, now: Date = Date()) async throws -> AcceptResult {
        try await accept(write, for: key, policy: Fixture.policy, limits: limits, newClientId: Fixture.newClientId(), now: now)
    }

    /// Queues a start (with `token`) and a login for `key`, claims the device for `owner` and loads its work:
    /// how the cases that commit engine steps begin.
    func queueStartAndLoginClaimed(_ key: DeviceKey, token: TokenRef? = nil, owner: String, lease: Duration, now: Date) async throws -> Work {
        try await put(Fixture.start(token), key, now: now)
        try await put(.login(fieldId: 3, value: "x"), key, now: now)
        #expect(try await claimDue(now: now, limit: 1, owner: owner, lease: lease) == [key])
        return try #require(try await loadWork(key))
    }
}

/// The fields of a device's status that the cases read, from the store's snapshot (the status document itself is
/// the HTTP layer's).
struct StoreStatus: Hashable {
    var clientId: String
    var provider: String?
    var tokenHash: String?
    var state: String
    var pending: Int
    var waitingFor: String?
}

extension DeviceStore {
    /// The device as the API would show it.
    func status(of key: DeviceKey) async throws -> StoreStatus? {
        try await snapshot(of: key).map(\.status)
    }
}

extension DeviceSnapshot {
    var status: StoreStatus {
        StoreStatus(
            clientId: state.clientId, provider: registration.provider, tokenHash: registration.tokenHash,
            state: DeviceStateName.of(state, pending: registration.pending).rawValue, pending: registration.pending,
            waitingFor: state.waitingFor)
    }
    var deviceId: String { registration.key.deviceId }
}

extension AcceptResult {
    var kind: String {
        switch self {
        case .accepted: "accepted"
        case .deduplicated: "deduplicated"
        case .unknownDevice: "unknownDevice"
        case .queueFull(let scope): "queueFull:\(scope)"
        }
    }
}
