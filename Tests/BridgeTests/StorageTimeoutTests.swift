import ConcurrencySupport
import Foundation
import Testing
@testable import Bridge

/// The wait on a store that may stall: the caller gets `StorageTimeout` when the time runs out, and hears (through
/// `endedLate`) when the operation it gave up on ends after all, since that operation may have done its work (a query
/// already sent runs to its end). The engine and the API wake on it: work queued or leases taken meanwhile are not
/// left for the engine's next look.
@Suite("Storage timeout")
struct StorageTimeoutTests {
    /// An operation that cannot be stopped once started (as a query already sent): it ends when `gate` opens,
    /// whatever its caller does, and records that it ran.
    static func unstoppable(until gate: OneShot<Void>, ran: LockedValue<Bool>) -> @Sendable () async throws -> Int {
        {
            await Task { try? await gate.value() }.value
            ran.set(true)
            return 7
        }
    }

    @Test("an operation that ends after the wait was given up: StorageTimeout for the caller, then endedLate once it ends")
    func endsLate() async throws {
        let (gate, ran, ended) = (OneShot<Void>(), LockedValue(false), OneShot<Bool>())
        await #expect(throws: StorageTimeout.self) {
            try await withStorageTimeout(.milliseconds(100), endedLate: { ended.succeed(ran.get()) }, Self.unstoppable(until: gate, ran: ran))
        }
        #expect(ended.current == nil, "the operation is still running")
        gate.succeed(())
        // Called after the operation's work, so that whoever it wakes sees what it did.
        #expect(try await ended.value() == true)
    }

    @Test("an operation that answers in time: its value, and endedLate is never called")
    func answersInTime() async throws {
        let (gate, ran, late) = (OneShot<Void>(), LockedValue(false), LockedValue(0))
        gate.succeed(())
        // A wait far longer than the operation, even on a machine busy with the rest of the suite.
        let value = try await withStorageTimeout(.seconds(60), endedLate: { late.update { $0 += 1 } }, Self.unstoppable(until: gate, ran: ran))
        #expect(value == 7)
        try await Task.sleep(for: .milliseconds(100))
        #expect(late.get() == 0)
    }

    @Test("a failure in time is the caller's error, not a late end")
    func failsInTime() async throws {
        struct Boom: Error {}
        let late = LockedValue(0)
        await #expect(throws: Boom.self) {
            try await withStorageTimeout(.seconds(60), endedLate: { late.update { $0 += 1 } }) { () async throws -> Int in throw Boom() }
        }
        try await Task.sleep(for: .milliseconds(100))
        #expect(late.get() == 0)
    }
}
