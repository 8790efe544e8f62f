import ConcurrencySupport
import Foundation
import Logging
import ServiceLifecycle
import Storage

/// Deletes what is kept only for a while, every minute (the first time ten seconds after the start): device history
/// past `history.maxAgeDays`, idempotency keys past their 24 hours. On PostgreSQL every instance does it; the
/// deletes are idempotent.
final class Housekeeping: Service, Sendable {
    struct Task: Sendable {
        var name: String
        var run: @Sendable () async throws -> Int
    }

    private let tasks: [Task]
    private let logger: Logger
    private let first: Duration
    private let every: Duration
    private let running = LockedValue(true)
    private let wake = Signal()

    init(tasks: [Task], logger: Logger, first: Duration = .seconds(10), every: Duration = .seconds(60)) {
        self.tasks = tasks
        self.logger = logger
        self.first = first
        self.every = every
    }

    /// The tasks of a server: what `store` keeps for a while.
    static func tasks(store: any DeviceStore, historyMaxAgeDays: Int) -> [Task] {
        [
            Task(name: "device history") {
                try await store.trimHistory(before: Date().addingTimeInterval(-TimeInterval(historyMaxAgeDays) * 86_400))
            },
            Task(name: "idempotency keys") {
                try await store.purgeIdempotencyKeys(before: Date().addingTimeInterval(-IdempotencyWindow().keep))
            },
        ]
    }

    func run() async throws {
        await withGracefulShutdownHandler {
            var wait = first
            while running.get() {
                await wake.wait(timeout: wait)
                guard running.get() else { break }
                wait = every
                for task in tasks {
                    do {
                        let removed = try await task.run()
                        if removed > 0 { logger.debug("housekeeping", metadata: ["task": "\(task.name)", "removed": "\(removed)"]) }
                    } catch {
                        logger.warning("housekeeping failed; it runs again in a minute", metadata: ["task": "\(task.name)", "error": "\(storageErrorText(error))"])
                    }
                }
            }
        } onGracefulShutdown: {
            self.running.set(false)
            self.wake.notify()
        }
    }
}
