import ArgumentParser
import Foundation
import PushTokens
import PushbridgeConfig
import PushbridgeServer
import Storage
import Workflow

/// Hidden: fills the configured SQLite store with registered devices, for benchmarks at scale
/// (`scripts/bench.sh`). Devices are `seed-0` ... `seed-(N-1)` of the first configured app, each with
/// its own FCM token, an anonymous contact and the state a finished start workflow leaves.
struct Seed: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write registered devices straight into the SQLite store (benchmarks).", shouldDisplay: false)

    @Option(name: .long, help: "YAML configuration file (default: config/pushbridge.yaml if present).")
    var config: String?

    @Option(name: .long, help: "How many devices.")
    var devices: Int

    @Option(name: .long, help: "App code (default: the first configured app).")
    var app: String?

    @Option(name: .long, help: "Devices per transaction.")
    var batch = 5000

    func run() async throws {
        let settings = try ConfigLoader.load(file: configurationFile(config))
        guard let path = settings.sqlitePath else { throw ValidationError("seed writes SQLite stores only") }
        guard let appCode = app ?? settings.apps.first?.code else { throw ValidationError("no app configured") }
        let store = try SQLiteDeviceStore(path: path, sealer: try BridgeServer.sealer(settings, sqlitePath: path))
        try await store.migrate()
        let registry = ProviderRegistry.builtIn
        let started = Date()
        let now = Date()
        var written = 0
        var next = 0
        while next < devices {
            let end = min(devices, next + max(1, batch))
            var rows: [SQLiteDeviceStore.SeedDevice] = []
            rows.reserveCapacity(end - next)
            for i in next..<end {
                let n = try registry.normalize(provider: "fcm", input: .text("seed\(i):APA91b\(String(repeating: "x", count: 40))\(i)"), environment: nil)
                let token = TokenRef(provider: n.provider, platform: n.platform, pushToken: n.pushToken, tokenHash: n.tokenHash)
                rows.append(.init(key: DeviceKey(appCode: appCode, deviceId: "seed-\(i)"), token: token, state: Self.registered(i, token: token, now: now)))
            }
            written += try await store.seed(rows, now: now)
            next = end
        }
        try await store.close()
        let seconds = Date().timeIntervalSince(started)
        print("seeded \(written) devices into \(path) in \(String(format: "%.1f", seconds)) s")
    }

    /// What a device looks like after client, anonymous link, start event and push token succeeded.
    static func registered(_ i: Int, token: TokenRef, now: Date) -> DeviceState {
        var s = DeviceState(clientId: UUID().uuidString.lowercased(), platform: token.platform)
        s.clientState = "seed-client-state-" + String(repeating: "c", count: 160) + "\(i)"
        s.contactToken = "seed-contact-token-" + String(repeating: "t", count: 160) + "\(i)"
        s.refreshToken = "seed-refresh-token-" + String(repeating: "r", count: 160) + "\(i)"
        s.linkedContact = .anonymous
        s.wantedContact = .anonymous
        s.deviceInfoHashSent = String(repeating: "0", count: 64)
        s.info = DeviceInfo(applicationVersion: "2.4.0", deviceModel: "Pixel 8", osVersion: "15", language: "en-GB", timezone: "+0100")
        s.pushTokenSent = token
        s.wantedToken = token
        s.lastRequestOrder = Int64(now.timeIntervalSince1970 * 1000)
        s.steps = StepTimes(clientAt: now, contactAt: now, pushTokenAt: now)
        return s
    }
}
