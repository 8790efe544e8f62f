import Foundation
import ServiceLifecycle
import Synchronization

/// The first service to hear SIGTERM: from then on `/ready` and every API write answer 503, so a
/// load balancer moves traffic away, while the engine finishes the ME calls in flight.
final class ShutdownGate: Service, Sendable {
    private let flag = Mutex(false)
    private let drain: Duration

    init(drain: Duration) {
        self.drain = drain
    }

    var isDraining: Bool { flag.withLock { $0 } }

    func run() async throws {
        try? await gracefulShutdown()
        flag.withLock { $0 = true }
        try? await Task.sleep(for: drain)
    }
}
