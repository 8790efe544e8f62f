import Bridge
import Foundation
import Testing

/// `apps[].meRequestsPerSecond` as pure scheduling: the start times the limiter hands out, on a clock the test moves.
@Suite("The rate limit toward ME")
struct RateLimiterTests {
    static let window = Duration.milliseconds(1100)

    /// The most starts in any window of `length` (closed on the left, open on the right).
    static func mostInAnyWindow(_ starts: [ContinuousClock.Instant], _ length: Duration) -> Int {
        let sorted = starts.sorted()
        var most = 0
        var first = 0
        for (i, t) in sorted.enumerated() {
            while sorted[first] + length <= t { first += 1 }
            most = max(most, i - first + 1)
        }
        return most
    }

    @Test("random bursts never put more than the rate in any window, and nobody waits longer than the queue ahead needs")
    func bursts() {
        var rng = SystemRandomNumberGenerator()
        for rate in [1, 3, 50, 200] {
            let limiter = RateLimiter(rates: ["A": rate], window: Self.window)
            var now = ContinuousClock.now
            var starts: [ContinuousClock.Instant] = []
            for _ in 0..<(rate * 5 + 7) {
                now += .milliseconds(Int64.random(in: 0...(2000 / Int64(rate)), using: &rng))
                let at = limiter.reserve(app: "A", now: now)
                #expect(at >= now)
                #expect(starts.last.map { at >= $0 } ?? true, "starts are handed out in order")
                starts.append(at)
            }
            #expect(Self.mostInAnyWindow(starts, Self.window) <= rate, "rate \(rate)")
            // Without a backlog the start is now: the first request of an idle app does not wait.
            let idle = now + .seconds(10)
            #expect(limiter.reserve(app: "A", now: idle) == idle)
        }
    }

    @Test("a burst of 10 at 4 per window: 4 at once, then 4 a window later, then 2")
    func evenStream() {
        let limiter = RateLimiter(rates: ["A": 4], window: Self.window)
        let t0 = ContinuousClock.now
        let offsets = (0..<10).map { _ in limiter.reserve(app: "A", now: t0) - t0 }
        #expect(offsets == Array(repeating: .zero, count: 4) + Array(repeating: Self.window, count: 4) + Array(repeating: Self.window * 2, count: 2))
    }

    @Test("apps are limited apart; an app without a rate never waits")
    func perApp() {
        let limiter = RateLimiter(rates: ["A": 1, "B": 2, "C": 0], window: Self.window)
        let t0 = ContinuousClock.now
        #expect(limiter.limits("A") && limiter.limits("B") && !limiter.limits("C") && !limiter.limits("D"))
        #expect(limiter.reserve(app: "A", now: t0) == t0)
        #expect(limiter.reserve(app: "B", now: t0) == t0)
        #expect(limiter.reserve(app: "B", now: t0) == t0)
        #expect(limiter.reserve(app: "A", now: t0) == t0 + Self.window)
        #expect(limiter.reserve(app: "B", now: t0) == t0 + Self.window)
        for _ in 0..<100 { #expect(limiter.reserve(app: "D", now: t0) == t0) }
    }

    @Test("a 429 pauses the app: nothing starts before the pause ends, a shorter pause does not cut a longer one")
    func pause() {
        let limiter = RateLimiter(rates: ["A": 100, "B": 100], window: Self.window)
        let t0 = ContinuousClock.now
        limiter.pause(app: "A", for: .seconds(3), now: t0)
        limiter.pause(app: "A", for: .seconds(1), now: t0)
        #expect(limiter.reserve(app: "A", now: t0) == t0 + .seconds(3))
        #expect(limiter.reserve(app: "A", now: t0 + .seconds(5)) == t0 + .seconds(5))
        #expect(limiter.reserve(app: "B", now: t0) == t0)
    }

    @Test("a turn further than the horizon is not reserved: it says when, and the next caller is not pushed back by it")
    func horizon() {
        let limiter = RateLimiter(rates: ["A": 2], window: Self.window)
        let t0 = ContinuousClock.now
        #expect(limiter.reserve(app: "A", now: t0, within: .seconds(1)) == .reserved(t0))
        #expect(limiter.reserve(app: "A", now: t0, within: .seconds(1)) == .reserved(t0))
        // The third would start a window later: beyond a horizon of 1 s, so nothing is reserved, however often asked.
        for _ in 0..<5 { #expect(limiter.reserve(app: "A", now: t0, within: .seconds(1)) == .notBefore(t0 + Self.window)) }
        #expect(limiter.reserve(app: "A", now: t0, within: .seconds(2)) == .reserved(t0 + Self.window))
        // A pause longer than the horizon: not reserved, and due at its end.
        limiter.pause(app: "A", for: .seconds(30), now: t0)
        #expect(limiter.pausedUntil(app: "A", now: t0) == t0 + .seconds(30))
        #expect(limiter.reserve(app: "A", now: t0, within: .seconds(1)) == .notBefore(t0 + .seconds(30)))
        #expect(limiter.pausedUntil(app: "A", now: t0 + .seconds(31)) == nil)
        #expect(limiter.pausedUntil(app: "B", now: t0) == nil)
    }
}
