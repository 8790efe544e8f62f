import NIOCore
import NIOPosix

/// A task executor that runs Swift concurrency jobs on SwiftNIO's event loops.
///
/// Hummingbird reads each request on an event loop of `MultiThreadedEventLoopGroup.singleton`, and
/// AsyncHTTPClient answers on the same loops; by default every `await` in between continues on Swift's
/// own thread pool, so each request and each Mobile Engage call crosses between the two pools several
/// times (a wake-up of another thread each time). Under `withTaskExecutorPreference(EventLoopExecutor())`
/// a job enqueued from an event loop runs on that same loop, and one enqueued from elsewhere (a GRDB
/// queue, a timer) on the next loop of the group. Everything the server awaits is non-blocking, apart
/// from SQLite point reads (microseconds, no disk I/O for a warm database), so the loops stay responsive.
///
/// Tasks started with `Task { }` do not inherit the preference and keep running on the default executor.
public final class EventLoopExecutor: TaskExecutor, Sendable {
    private let group: MultiThreadedEventLoopGroup

    public init(group: MultiThreadedEventLoopGroup = .singleton) {
        self.group = group
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        // `any()` is the loop this thread runs, when it runs one of the group's loops: no thread switch.
        group.any().execute {
            job.runSynchronously(on: self.asUnownedTaskExecutor())
        }
    }
}
