/// Wakes one waiting task at once, or lets it sleep until a deadline. A notify with nobody waiting
/// is remembered, so a wake between "found nothing" and "wait" is never lost.
actor Signal {
    private var pending = false
    private var waiter: (id: Int, continuation: CheckedContinuation<Void, Never>)?
    private var nextId = 0

    func notify() {
        if let w = waiter {
            waiter = nil
            w.continuation.resume()
        } else {
            pending = true
        }
    }

    func wait(timeout: Duration) async {
        if pending {
            pending = false
            return
        }
        nextId += 1
        let id = nextId
        let timer = Task { [weak self] in
            try? await Task.sleep(for: timeout)
            await self?.expire(id)
        }
        await withCheckedContinuation { c in waiter = (id, c) }
        timer.cancel()
    }

    private func expire(_ id: Int) {
        if let w = waiter, w.id == id {
            waiter = nil
            w.continuation.resume()
        }
    }
}

/// A queue of device keys shared by the workers: the dispatcher fills it, each worker takes one.
actor WorkQueue<Element: Sendable> {
    private var items: [Element] = []
    private var consumers: [CheckedContinuation<Element?, Never>] = []
    private var closed = false
    private(set) var busy = 0

    func push(_ elements: [Element]) {
        for e in elements {
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

    func done() { busy -= 1 }

    /// How many elements are buffered or being worked.
    var load: Int { items.count + busy }

    func close() {
        closed = true
        for c in consumers { c.resume(returning: nil) }
        consumers.removeAll()
    }
}
