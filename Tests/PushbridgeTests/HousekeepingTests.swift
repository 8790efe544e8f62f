import ConcurrencySupport
import Foundation
import Logging
@testable import PushbridgeServer
import ServiceLifecycle
import Storage
import Testing

/// The housekeeping service: its tasks run again and again, one failing does not stop the others, a shutdown stops
/// it; and the server's tasks delete what is past its age in a real store.
@Suite("Housekeeping")
struct HousekeepingTests {
    @Test("every task runs on each round, a failing one does not stop the next, and a graceful shutdown ends it")
    func rounds() async throws {
        let runs = LockedValue<[String]>([])
        struct Broken: Error {}
        let service = Housekeeping(tasks: [
            .init(name: "failing") { runs.update { $0.append("failing") }; throw Broken() },
            .init(name: "counting") { runs.update { $0.append("counting") }; return 1 },
        ], logger: Logger(label: "test"), first: .milliseconds(10), every: .milliseconds(20))
        let group = ServiceGroup(services: [service], logger: Logger(label: "test"))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            // Generous: on a loaded machine (the whole suite on two cores) a round may wait long for a thread.
            let deadline = ContinuousClock.now + .seconds(60)
            while runs.get().filter({ $0 == "counting" }).count < 3 && ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(10))
            }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        let seen = runs.get()
        #expect(seen.filter { $0 == "counting" }.count >= 3)
        #expect(seen.filter { $0 == "failing" }.count >= 3, "a failure is tried again next round")
    }

    @Test("the server's tasks: history past its age and idempotency keys past 24 hours go, younger ones stay")
    func serverTasks() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("housekeeping-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = try SQLiteDeviceStore(path: dir.appendingPathComponent("db.sqlite").path, sealer: Sealer(key: .init(size: .bits256)))
        try await store.migrate()
        let request = Data("PUT\n/v1/apps/A/devices/d\n{}".utf8)
        _ = try await store.claimIdempotencyKey(app: "A", key: "old", request: request, now: Date().addingTimeInterval(-90_000), window: .init())
        _ = try await store.claimIdempotencyKey(app: "A", key: "new", request: request, now: Date(), window: .init())
        let tasks = Housekeeping.tasks(store: store, historyMaxAgeDays: 30)
        #expect(tasks.map(\.name) == ["device history", "idempotency keys"])
        #expect(try await tasks[1].run() == 1, "the key first used 25 hours ago")
        #expect(try await tasks[0].run() == 0)
        try await store.close()
    }
}
