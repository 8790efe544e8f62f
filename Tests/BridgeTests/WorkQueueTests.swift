import Testing
@testable import Bridge

/// The queue between the dispatcher and the workers: one worker per device at a time, and a claim that takes a
/// device a worker still has is reported, not dropped (its lease must be given back), while the device stays held.
@Suite("Work queue")
struct WorkQueueTests {
    @Test("a device pushed while a worker has it goes to no second worker; finish reports the second claim and keeps it held until asked again")
    func claimedAgainWhileWorked() async {
        let queue = WorkQueue<String>()
        await queue.push(["a", "b"])
        #expect(await queue.next() == "a")
        await queue.push(["a"])  // claimed again while the worker has it
        #expect(await queue.next() == "b")
        #expect(await queue.load == 2)
        // The worker gives the second lease back while "a" is still held: a claim meanwhile is reported again.
        #expect(await queue.finish("a") == true)
        #expect(await queue.held.contains("a"))
        await queue.push(["a"])
        #expect(await queue.finish("a") == true)
        #expect(await queue.finish("a") == false)
        #expect(await queue.finish("b") == false)
        #expect(await queue.held.isEmpty)
        #expect(await queue.load == 0)
        // Let go: the next claim of "a" is a turn of its own.
        await queue.push(["a"])
        #expect(await queue.next() == "a")
        #expect(await queue.finish("a") == false)
    }

    @Test("a device pushed again while it waits in the buffer is queued once, and finish reports nothing")
    func pushedAgainWhileBuffered() async {
        let queue = WorkQueue<String>()
        await queue.push(["a"])
        await queue.push(["a"])
        #expect(await queue.load == 1)
        #expect(await queue.next() == "a")
        #expect(await queue.finish("a") == false)
        await queue.close()
        #expect(await queue.next() == nil)
    }
}
