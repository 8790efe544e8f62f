/// A bounded, append-only list that drops its oldest element when full.
///
/// The sandbox records every request it sees; a ring keeps that O(1) per request and bounded in memory,
/// which matters when the sandbox backs a benchmark with millions of requests.
struct RingBuffer<Element>: Sendable where Element: Sendable {
    private var storage: [Element] = []
    private var head = 0
    let capacity: Int

    init(capacity: Int) {
        self.capacity = max(1, capacity)
    }

    var count: Int { storage.count }

    mutating func append(_ element: Element) {
        if storage.count < capacity {
            storage.append(element)
        } else {
            storage[head] = element
            head = (head + 1) % capacity
        }
    }

    /// The elements, oldest first.
    var elements: [Element] {
        if head == 0 { return storage }
        return Array(storage[head...] + storage[..<head])
    }
}
