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

    var registration: DeviceRegistration {
        DeviceRegistration(key: key, provider: provider, platform: platform, tokenHash: tokenHash, pending: pending, updatedAt: Codec.date(updatedAt))
    }

    func status(deduplicated: Bool? = nil) throws -> DeviceStatus {
        DeviceStatus(registration: registration, state: state, deduplicated: deduplicated)
    }
}
