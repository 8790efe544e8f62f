import Dispatch
import Foundation
import ServerSupport
import Storage
import Synchronization
import Testing
import Workflow

/// Point reads (status, deduplicated writes, engine loads) run synchronously on the calling thread; listings and
/// counts run on GRDB's reader queues. If both took their connection from one pool, the synchronous reads could
/// block every thread of Swift's executor while waiting for a connection that an asynchronous read holds and can
/// only give back on such a thread: a deadlock. This hammers both kinds at once.
@Suite("SQLite store: point reads and listings at once")
struct SQLiteReadConcurrencyTests {
    @Test("2,000 concurrent status reads, deduplicated writes, listings and counts all finish")
    func mixedReads() async throws {
        try await StoreHarness.withFresh(.sqlite, Self.mixedReads)
    }

    @Test("the same on the event loops, as the server runs them (EventLoopExecutor: two threads, no spare pool)")
    func mixedReadsOnEventLoops() async throws {
        try await withTaskExecutorPreference(EventLoopExecutor()) {
            try await StoreHarness.withFresh(.sqlite, Self.mixedReads)
        }
    }

    static func mixedReads(_ h: StoreHarness) async throws {
        let store = try await h.open()
        for i in 0..<40 {
            try await store.put(.setToken(Fixture.token("t\(i)")), Fixture.key("d\(i)"))
        }
        // A deadlock leaves no executor thread to fail the test with, so a dispatch timer does.
        let finished = Atomic<Bool>(false)
        DispatchQueue.global().asyncAfter(deadline: .now() + 120) {
            precondition(finished.load(ordering: .acquiring), "SQLite reads deadlocked: 2,000 mixed reads did not finish in 120 s")
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<2000 {
                group.addTask {
                    let key = Fixture.key("d\(i % 40)")
                    switch i % 4 {
                    case 0: _ = try await store.list(app: Fixture.app, state: nil, limit: 50, after: nil)
                    case 1: _ = try await store.queuedIntents()
                    case 2: #expect(try await store.status(of: key) != nil)
                    default: #expect(try await store.put(.setToken(Fixture.token("t\(i % 40)")), key).kind == "deduplicated")
                    }
                }
            }
            try await group.waitForAll()
        }
        finished.store(true, ordering: .releasing)
    }
}
