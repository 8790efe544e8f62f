import Synchronization

/// A result that is set once and awaited by any number of tasks: the port a server got, a migration's outcome.
/// Waiters that come after the result resume at once; a second `resolve` is ignored.
public final class OneShot<Value: Sendable>: Sendable {
    private enum State {
        case waiting([CheckedContinuation<Value, any Error>])
        case done(Result<Value, any Error>)
    }
    private let state = Mutex(State.waiting([]))

    public init() {}

    /// Sets the result unless one was set before; returns whether this one was.
    @discardableResult
    public func resolve(_ result: Result<Value, any Error>) -> Bool {
        let waiters = state.withLock { s -> [CheckedContinuation<Value, any Error>]? in
            guard case .waiting(let waiters) = s else { return nil }
            s = .done(result)
            return waiters
        }
        guard let waiters else { return false }
        for w in waiters { w.resume(with: result) }
        return true
    }

    public func succeed(_ value: Value) { resolve(.success(value)) }

    /// The value, once there; throws the failure it was resolved with.
    public func value() async throws -> Value {
        try await withCheckedThrowingContinuation { c in
            let done = state.withLock { s -> Result<Value, any Error>? in
                switch s {
                case .done(let result):
                    return result
                case .waiting(var waiters):
                    waiters.append(c)
                    s = .waiting(waiters)
                    return nil
                }
            }
            if let done { c.resume(with: done) }
        }
    }

    /// The result when it is set; nil before (for a check that must not wait).
    public var current: Result<Value, any Error>? {
        state.withLock { s in
            if case .done(let result) = s { return result }
            return nil
        }
    }
}
