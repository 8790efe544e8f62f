import Bridge
import ConcurrencySupport
import Foundation
import Logging
import ServiceLifecycle
import Storage
import Workflow

/// Collects history entries (API writes, deduplicated ones included; ME calls; webhook attempts) and writes them in
/// batches, so that a deduplicated write, which stores nothing else, costs no write of its own. At most `bound`
/// entries wait; past it they are dropped and counted. A crash loses what waits (a fifth of a second): the history
/// is for people reading it, the intents and states themselves are stored with their writes.
/// Each batch keeps the devices it writes to at their newest `history.perDevice` entries; `Housekeeping` deletes
/// entries older than `history.maxAgeDays`.
///
/// It also carries the `lastSeenAt` of deduplicated writes (`seen`) to the store in the same rhythm: one per device
/// per batch, never dropped (a failed batch is kept for the next). A crash loses a fifth of a second of them, which
/// moves a device's retention clock back by as much.
final class HistoryRecorder: Service, Sendable {
    private let store: any DeviceStore
    private let pending = LockedValue<[HistoryRecord]>([])
    private let seenMarks = LockedValue<[DeviceKey: Date]>([:])
    private let flushing = AsyncLock()
    private let bound: Int
    private let perDevice: Int
    private let metrics: BridgeMetrics
    private let logger: Logger
    private let running = LockedValue(true)
    private let wake = Signal()

    init(store: any DeviceStore, perDevice: Int, bound: Int = 100_000, metrics: BridgeMetrics, logger: Logger) {
        self.store = store
        self.perDevice = perDevice
        self.bound = bound
        self.metrics = metrics
        self.logger = logger
    }

    /// Queues one entry; synchronous (a lock), so the API and the engine never wait for it.
    func record(_ record: HistoryRecord) {
        let kept = pending.update { queue -> Bool in
            guard queue.count < bound else { return false }
            queue.append(record)
            return true
        }
        if !kept { metrics.historyDropped() }
    }

    /// A deduplicated write for `key` arrived at `at`: the device was seen.
    func seen(_ key: DeviceKey, at: Date) {
        seenMarks.update { marks in
            if marks[key].map({ $0 < at }) ?? true { marks[key] = at }
        }
    }

    func run() async throws {
        await withGracefulShutdownHandler {
            while running.get() {
                await wake.wait(timeout: .milliseconds(200))
                await flush()
            }
            await flush()  // what the last requests recorded
        } onGracefulShutdown: {
            self.running.set(false)
            self.wake.notify()
        }
    }

    private func flush() async {
        await flushSeen()
        let batch = pending.update { queue -> [HistoryRecord] in
            defer { queue.removeAll(keepingCapacity: true) }
            return queue
        }
        guard !batch.isEmpty else { return }
        do {
            try await store.appendHistory(batch, keepPerDevice: perDevice)
        } catch {
            metrics.historyDropped(batch.count)
            logger.warning("writing the device history failed; these entries are lost", metadata: [
                "entries": "\(batch.count)", "error": "\(storageErrorText(error))",
            ])
        }
    }

    /// Writes the sightings waiting now (the retention sweep calls it before each round, so that a device seen a moment
    /// ago is not taken for stale); false when that failed. One flush at a time: the sweep's waits for the recorder's.
    @discardableResult
    func flushSeen() async -> Bool {
        await flushing.lock()
        defer { flushing.unlock() }
        let marks = seenMarks.update { marks -> [DeviceKey: Date] in
            defer { marks.removeAll(keepingCapacity: true) }
            return marks
        }
        guard !marks.isEmpty else { return true }
        do {
            try await store.markSeen(marks)
            return true
        } catch {
            // Kept for the next batch (newer marks that came meanwhile win).
            seenMarks.update { now in now.merge(marks) { newer, older in max(newer, older) } }
            logger.warning("writing when devices were last seen failed; tried again with the next batch", metadata: [
                "devices": "\(marks.count)", "error": "\(storageErrorText(error))",
            ])
            return false
        }
    }
}
