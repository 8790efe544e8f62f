import ConcurrencySupport
import Foundation
import NIOCore
import NIOPosix
import Storage
import Synchronization

/// What the bridge has seen of its storage lately: the last operation that failed, and when. The engine and the API
/// report every failed storage operation here; readiness reads it (a store that cannot write is not ready, even when
/// reads still work, as on a full disk), and `pushbridge_storage_errors_total{operation}` counts them.
public final class StorageHealth: Sendable {
    public struct Failure: Sendable, Hashable {
        /// The operation that failed (`accept`, `commit`, `claim`, ...): a fixed name, never a value.
        public var operation: String
        public var at: ContinuousClock.Instant
    }

    private let last = Mutex<Failure?>(nil)
    private let metrics: BridgeMetrics

    public init(metrics: BridgeMetrics = .discarding) {
        self.metrics = metrics
    }

    /// Records a failed storage operation: counted always; remembered for readiness when it says storage cannot be
    /// used (a timeout, a lost connection, a full or read-only disk), not when one row went wrong.
    public func failed(_ operation: String, _ error: any Error) {
        metrics.storageError(operation: operation)
        guard error is StorageTimeout || storageIsUnavailable(error) else { return }
        last.withLock { $0 = Failure(operation: operation, at: .now) }
    }

    /// The last failure, if it happened within `window`.
    public func failure(within window: Duration) -> Failure? {
        last.withLock { failure in
            guard let failure, ContinuousClock.now - failure.at <= window else { return nil }
            return failure
        }
    }
}

/// Runs `body`, but gives up waiting for it after `timeout` with `StorageTimeout`: a database that is down or out of
/// connections must not hold an API client, a readiness probe or an engine worker for longer. The operation is then
/// cancelled and its result dropped; a store's operation is one transaction, so it either happened or did not.
///
/// The timer is an event loop's scheduled task, removed from its heap when the operation answers first: a
/// `Task.sleep` per call left one pending timer per request behind for the whole wait (memory and CPU under load).
///
/// `ended`, when given, is called if the operation ends after the wait was given up: a query already sent when the
/// time ran out runs to its end and may have done its work (a write queued, a lease taken) that nobody hears of.
public func withStorageTimeout<T: Sendable>(
    _ timeout: Duration, endedLate ended: (@Sendable () -> Void)? = nil, _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
    let outcome = OneShot<T>()
    let work = Task {
        let result: Result<T, any Error>
        do { result = .success(try await body()) } catch { result = .failure(error) }
        if !outcome.resolve(result) { ended?() }
    }
    let (seconds, attoseconds) = timeout.components
    let timer = MultiThreadedEventLoopGroup.singleton.any().scheduleTask(
        in: .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    ) {
        outcome.resolve(.failure(StorageTimeout(after: timeout)))
        // Not waited for any more: a request still queued for a connection is dropped (a query already sent runs
        // to its end, holding its row locks, so a retry of the same write is ordered after it).
        work.cancel()
    }
    defer { timer.cancel() }
    return try await withTaskCancellationHandler {
        try await outcome.value()
    } onCancel: {
        work.cancel()
    }
}

/// `withStorageTimeout` where `store` can stall (PostgreSQL: a dead connection may never answer); a store that
/// answers or fails by itself (SQLite) runs `body` as it is, without the extra task and timer.
public func withStorageTimeout<T: Sendable>(
    _ timeout: Duration, on store: any DeviceStore, endedLate ended: (@Sendable () -> Void)? = nil, _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
    store.mayStall ? try await withStorageTimeout(timeout, endedLate: ended, body) : try await body()
}

/// Storage did not answer within the wait.
public struct StorageTimeout: Error, CustomStringConvertible {
    public var after: Duration
    public var description: String { "storage did not answer within \(after)" }
}
