import Synchronization

/// Wakes one waiting task at once, or lets it sleep until a deadline. A notify with nobody waiting is remembered,
/// so a wake between "found nothing" and "wait" is never lost. `notify()` is synchronous (a lock, no task hop), so
/// the API wakes the engine on every accepted write without spawning a task.
final class Signal: Sendable {
    private struct State {
        var pending = false
        var waiter: (id: Int, continuation: CheckedContinuation<Void, Never>)?
        var nextId = 0
        /// A deadline that passed before its wait had registered (a very short timeout).
        var expired: Int?
    }
    private let state = Mutex(State())

    func notify() {
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

    func wait(timeout: Duration) async {
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

/// A queue of device keys shared by the workers: the dispatcher fills it, each worker takes one.
///
/// An element pushed while a worker has it (a claim took its device again: after the turn's last commit gave the
/// lease back, or after the lease ran out during a long storage retry) is not handed to a second worker. `finish`
/// reports it instead, and keeps the element held until the worker has given that claim's lease back: dropped
/// silently, the lease would be held by no one, and the device frozen until it runs out.
actor WorkQueue<Element: Sendable & Hashable> {
    private var items: [Element] = []
    private var consumers: [CheckedContinuation<Element?, Never>] = []
    private var closed = false
    private(set) var busy = 0
    /// Every element pushed and not yet let go by `finish`: buffered or being worked.
    private(set) var held: Set<Element> = []
    /// Elements pushed again while a worker had them.
    private var claimedAgain: Set<Element> = []

    func push(_ elements: [Element]) {
        for e in elements {
            guard held.insert(e).inserted else {
                if !items.contains(e) { claimedAgain.insert(e) }
                continue
            }
            if !consumers.isEmpty {
                busy += 1
                consumers.removeFirst().resume(returning: e)
            } else {
                items.append(e)
            }
        }
    }

    /// The next element, or nil once closed.
    func next() async -> Element? {
        if !items.isEmpty {
            busy += 1
            return items.removeFirst()
        }
        if closed { return nil }
        return await withCheckedContinuation { consumers.append($0) }
    }

    /// A worker is through with `element`: true when it was pushed again meanwhile, and stays held (the worker gives
    /// that lease back and asks again); false when it is let go.
    func finish(_ element: Element) -> Bool {
        if claimedAgain.remove(element) != nil { return true }
        busy -= 1
        held.remove(element)
        return false
    }

    /// How many elements are buffered or being worked.
    var load: Int { items.count + busy }

    func close() {
        closed = true
        for c in consumers { c.resume(returning: nil) }
        consumers.removeAll()
    }
}
