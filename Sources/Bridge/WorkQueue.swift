import Synchronization

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
