import Synchronization

/// Wakes one waiting task at once, or lets it sleep until a deadline. A notify with nobody waiting is remembered,
/// so a wake between "found nothing" and "wait" is never lost. `notify()` is synchronous (a lock, no task hop), so
/// the API wakes the engine on every accepted write without spawning a task.
public final class Signal: Sendable {
    private struct State {
        var pending = false
        var waiter: (id: Int, continuation: CheckedContinuation<Void, Never>)?
        var nextId = 0
        /// A deadline that passed before its wait had registered (a very short timeout).
        var expired: Int?
    }
    private let state = Mutex(State())

    public init() {}

    public func notify() {
        let waiter = state.withLock { s -> CheckedContinuation<Void, Never>? in
            guard let w = s.waiter else {
                s.pending = true
                return nil
            }
            s.waiter = nil
            return w.continuation
        }
        waiter?.resume()
    }

    public func wait(timeout: Duration) async {
        let id: Int? = state.withLock { s in
            if s.pending {
                s.pending = false
                return nil
            }
            s.nextId += 1
            return s.nextId
        }
        guard let id else { return }
        let timer = Task { [weak self] in
            try? await Task.sleep(for: timeout)
            self?.expire(id)
        }
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let now = state.withLock { s -> Bool in
                if s.pending || s.expired == id {
                    s.pending = false
                    s.expired = nil
                    return true
                }
                s.waiter = (id, c)
                return false
            }
            if now { c.resume() }
        }
        timer.cancel()
    }

    private func expire(_ id: Int) {
        let waiter = state.withLock { s -> CheckedContinuation<Void, Never>? in
            guard let w = s.waiter, w.id == id else {
                if s.nextId == id { s.expired = id }
                return nil
            }
            s.waiter = nil
            return w.continuation
        }
        waiter?.resume()
    }
}
