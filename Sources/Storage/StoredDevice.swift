import Workflow

/// A device row as both stores read it: the registration columns and the engine's state, opened.
struct StoredDevice {
    var key: DeviceKey
    var provider: String?
    var platform: String
    var tokenHash: String?
    var pending: Int
    var dueAt: Int64?
    var updatedAt: Int64
    var state: DeviceState
    /// Epoch ms of the newest backend write (`last_seen_at`).
    var lastSeenAt: Int64

    var registration: DeviceRegistration {
        DeviceRegistration(
            key: key, provider: provider, platform: platform, tokenHash: tokenHash, pending: pending, updatedAt: Codec.date(updatedAt),
            lastSeenAt: Codec.date(lastSeenAt))
    }

    var snapshot: DeviceSnapshot { DeviceSnapshot(registration: registration, state: state) }
}

extension StoredDevice {
    /// The row as an accepted API write leaves it, with `pending` intents queued: the registration columns follow
    /// the newest request (`Intake.registration`), the device becomes due unless a backoff is in progress, and the
    /// state column follows from the engine's state (which an API write never changes).
    /// - Returns: the state column's value before and after.
    /// `seen`: the write is a backend's (not the retention sweep's), so the device was seen now.
    mutating func touch(by write: DeviceWrite, pending: Int, nowMs: Int64, seen: Bool) -> (before: String, after: String) {
        let before = DeviceStateName.of(state, pending: self.pending).rawValue
        self.pending = pending
        dueAt = dueAt ?? nowMs
        updatedAt = nowMs
        if seen { lastSeenAt = max(lastSeenAt, nowMs) }
        let columns = Intake.registration(after: write, from: RegistrationColumns(provider: provider, platform: platform, tokenHash: tokenHash))
        (provider, platform, tokenHash) = (columns.provider, columns.platform, columns.tokenHash)
        return (before, DeviceStateName.of(state, pending: pending).rawValue)
    }
}
