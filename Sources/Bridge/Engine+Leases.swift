import ConcurrencySupport
import Foundation
import Logging
import MobileEngage
import Storage
import Workflow

/// Leases (`emarsys.leaseSeconds`, `instance.id`): renewed while a worker has the device, given back at start when an
/// earlier run of this instance held them, and never outlived by a request in flight.
extension Engine {
    /// A restarted instance (same `instance.id`) gives back at once what its earlier run held, rather than wait for
    /// those leases to run out. Storage failing now: they run out by themselves.
    func releaseEarlierRunsLeases() async {
        do {
            let given = try await timed("release_instance") { [store, owner, config] in
                try await store.releaseLeases(ofInstance: config.instanceId, except: owner)
            }
            if given > 0 { logger.notice("gave back the leases of this instance's earlier run", metadata: ["devices": "\(given)"]) }
        } catch {
            logger.warning("could not give back this instance's earlier leases; they run out by themselves", metadata: ["error": "\(storageErrorText(error))"])
        }
    }

    /// Renews the leases of the devices the workers have, every third of the lease, until the engine has stopped and
    /// the last worker let go (a turn that finishes during a shutdown keeps its lease).
    func heartbeatLoop() async {
        let interval = config.lease / 3
        while !Task.isCancelled {
            let until = ContinuousClock.now + interval
            while ContinuousClock.now < until {
                if !running.get() && renewed.get().isEmpty { return }
                try? await Task.sleep(for: min(.milliseconds(100), interval))
            }
            let keys = Array(renewed.get().keys)
            guard !keys.isEmpty else { continue }
            let asked = ContinuousClock.now
            do {
                let kept = try await timed("renew") { [store, owner, config] in try await store.renewLeases(keys, owner: owner, lease: config.lease, now: Date()) }
                renewed.update { map in
                    for key in kept { if let at = map[key], at < asked { map[key] = asked } }
                }
            } catch {
                logger.warning("renewing leases failed; calls in flight stop before the leases run out", metadata: ["error": "\(storageErrorText(error))"])
            }
        }
    }

    /// When `key`'s lease was last known renewed (now for a device no worker has).
    func renewedAt(_ key: DeviceKey) -> ContinuousClock.Instant {
        renewed.get()[key] ?? .now
    }

    /// Sends `call`, unless the device's lease might run out before the answer: when three quarters of the lease have
    /// passed since it was last renewed (the heartbeat failing: storage unreachable), the request is cancelled and the
    /// turn ends as with a lost lease, so another instance that takes the device then never has a request for the same
    /// client in flight beside this one's.
    func sendWithinLease(_ key: DeviceKey, _ call: MECall, context: MERequestContext, logger log: Logger) async throws -> MEAnswer {
        let margin = config.lease * 3 / 4
        let answer = await withTaskGroup(of: MEAnswer?.self) { group -> MEAnswer? in
            group.addTask { [me] in await me.send(call, context: context, logger: log) }
            group.addTask {
                while !Task.isCancelled {
                    let deadline = self.renewedAt(key) + margin
                    if ContinuousClock.now >= deadline { return nil }
                    try? await Task.sleep(until: min(deadline, .now + .milliseconds(250)), clock: .continuous)
                }
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
        guard let answer else { throw StorageError.leaseLost("\(key.appCode)/\(key.deviceId)") }
        return answer
    }
}
