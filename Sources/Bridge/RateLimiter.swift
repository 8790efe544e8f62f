import Foundation
import Synchronization

/// `apps[].meRequestsPerSecond`: at most that many ME requests of one app start in any window of `window` (a second,
/// and a margin for the network: requests that leave a second apart may arrive closer together), in this instance.
///
/// Each request gets the earliest start time that keeps the bound: the n-th one of an app starts no earlier than
/// `window` after the one `rate` grants before it. Grants are handed out in order and the caller sleeps until its own,
/// so a burst turns into an even stream. A 429 from ME pauses the app (`pause(app:for:)`): no grant starts before the
/// pause ends. Apps without a rate are never held.
public final class RateLimiter: Sendable {
    private struct Bucket {
        let rate: Int
        /// The last `rate` grant times (ring; `next` is the oldest once full).
        var grants: [ContinuousClock.Instant] = []
        var next = 0
        var pausedUntil: ContinuousClock.Instant?
    }

    public static let defaultWindow = Duration.milliseconds(1100)

    private let buckets: Mutex<[String: Bucket]>
    private let window: Duration

    /// `rates`: requests per window by app code (apps left out, or with a rate below 1, are not limited).
    public init(rates: [String: Int], window: Duration = RateLimiter.defaultWindow) {
        buckets = Mutex(rates.filter { $0.value >= 1 }.mapValues { Bucket(rate: $0) })
        self.window = window
    }

    /// Whether `app` is limited at all.
    public func limits(_ app: String) -> Bool { buckets.withLock { $0[app] != nil } }

    /// Reserves the next start time for a request of `app` (now when it is free): the caller starts it then.
    public func reserve(app: String, now: ContinuousClock.Instant = .now) -> ContinuousClock.Instant {
        buckets.withLock { all -> ContinuousClock.Instant in
            guard var bucket = all[app] else { return now }
            var at = now
            if let paused = bucket.pausedUntil, paused > at { at = paused }
            if bucket.grants.count == bucket.rate {
                at = max(at, bucket.grants[bucket.next] + window)
                bucket.grants[bucket.next] = at
                bucket.next = (bucket.next + 1) % bucket.rate
            } else {
                // Grants are non-decreasing: a later one never starts before an earlier one.
                at = max(at, bucket.grants.last ?? at)
                bucket.grants.append(at)
            }
            all[app] = bucket
            return at
        }
    }

    /// Waits until `app` may start one request; how long it waited.
    public func acquire(app: String) async -> Duration {
        let now = ContinuousClock.now
        let at = reserve(app: app, now: now)
        guard at > now else { return .zero }
        try? await Task.sleep(until: at, clock: .continuous)
        return at - now
    }

    /// ME answered `app` with 429: no grant starts for `duration` (`Retry-After`, else a second) from now.
    public func pause(app: String, for duration: Duration, now: ContinuousClock.Instant = .now) {
        buckets.withLock { all in
            guard var bucket = all[app] else { return }
            let until = now + duration
            if bucket.pausedUntil.map({ $0 < until }) ?? true { bucket.pausedUntil = until }
            all[app] = bucket
        }
    }
}
