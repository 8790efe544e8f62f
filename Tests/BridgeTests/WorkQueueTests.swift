import Testing
@testable import Bridge

/// The queue between the dispatcher and the workers: one worker per device at a time, and a claim that takes a
/// device a worker still has is reported, not dropped (its lease must be given back).
@Suite("Work queue")
struct WorkQueueTests {
    @Test("a device pushed while a worker has it goes to no second worker, and done reports the second claim")
    func claimedAgainWhileWorked() async {
        let queue = WorkQueue<String>()
        await queue.push(["a", "b"])
        #expect(await queue.next() == "a")
        await queue.push(["a"])  // claimed again while the worker has it
        #expect(await queue.next() == "b")
        #expect(await queue.load == 2)
        #expect(await queue.done("a") == true)
        #expect(await queue.done("b") == false)
        #expect(await queue.held.isEmpty)
        #expect(await queue.load == 0)
        // Reported once: the next turn of "a" starts clean.
        await queue.push(["a"])
        #expect(await queue.next() == "a")
        #expect(await queue.done("a") == false)
    }

    @Test("a device pushed again while it waits in the buffer is queued once, and done reports nothing")
    func pushedAgainWhileBuffered() async {
        let queue = WorkQueue<String>()
        await queue.push(["a"])
        await queue.push(["a"])
        #expect(await queue.load == 1)
        #expect(await queue.next() == "a")
        #expect(await queue.done("a") == false)
        await queue.close()
        #expect(await queue.next() == nil)
    }
}
