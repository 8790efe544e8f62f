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
        switch reserve(app: app, now: now, within: nil) {
        case .reserved(let at), .notBefore(let at): at
        }
    }

    public enum Reservation: Sendable, Hashable {
        case reserved(ContinuousClock.Instant)
        /// Nothing reserved: the earliest start is further away than asked for.
        case notBefore(ContinuousClock.Instant)
    }

    /// Reserves the next start time for a request of `app`, only when it is no later than `now + within` (nil: any).
    public func reserve(app: String, now: ContinuousClock.Instant = .now, within horizon: Duration?) -> Reservation {
        buckets.withLock { all -> Reservation in
            guard var bucket = all[app] else { return .reserved(now) }
            var at = now
            if let paused = bucket.pausedUntil, paused > at { at = paused }
            let full = bucket.grants.count == bucket.rate
            // Grants are non-decreasing: a later one never starts before an earlier one.
            at = full ? max(at, bucket.grants[bucket.next] + window) : max(at, bucket.grants.last ?? at)
            if let horizon, at > now + horizon { return .notBefore(at) }
            if full {
                bucket.grants[bucket.next] = at
                bucket.next = (bucket.next + 1) % bucket.rate
            } else {
                bucket.grants.append(at)
            }
            all[app] = bucket
            return .reserved(at)
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

    /// When `app`'s pause (a 429) ends, if it is paused at `now`.
    public func pausedUntil(app: String, now: ContinuousClock.Instant = .now) -> ContinuousClock.Instant? {
        buckets.withLock { all in all[app]?.pausedUntil.flatMap { $0 > now ? $0 : nil } }
    }

    /// ME answered `app` with 429: no grant starts for `duration` (`Retry-After`, else a second) from now; a caller
    /// holding a grant from before checks `pausedUntil` when its time comes.
    public func pause(app: String, for duration: Duration, now: ContinuousClock.Instant = .now) {
        buckets.withLock { all in
            guard var bucket = all[app] else { return }
            let until = now + duration
            if bucket.pausedUntil.map({ $0 < until }) ?? true { bucket.pausedUntil = until }
            all[app] = bucket
        }
    }
}
