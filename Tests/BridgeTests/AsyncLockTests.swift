import ConcurrencySupport
import Testing

@Suite("AsyncLock")
struct AsyncLockTests {
    @Test("holders never overlap, even across suspension points, and every waiter gets the lock")
    func exclusion() async {
        let lock = AsyncLock()
        let inside = LockedValue(0)
        let most = LockedValue(0)
        let done = LockedValue(0)
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<50 {
                group.addTask {
                    await lock.lock()
                    let now = inside.update { $0 += 1; return $0 }
                    most.update { $0 = max($0, now) }
                    await Task.yield()
                    try? await Task.sleep(for: .milliseconds(1))
                    inside.update { $0 -= 1 }
                    done.update { $0 += 1 }
                    lock.unlock()
                }
            }
        }
        #expect(most.get() == 1)
        #expect(done.get() == 50)
    }
}
