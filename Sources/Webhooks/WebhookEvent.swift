/// The events a backend can receive, by their `type` in the body.
public enum WebhookEvent: String, Sendable, Hashable, CaseIterable, Codable {
    /// The device's newest token reached ME (the device entered `registered`).
    case registered = "device.registered"
    /// The device entered `failed`: nothing goes until a new intent arrives.
    case failed = "device.failed"
    /// The device entered `unregistered`, with a reason.
    case unregistered = "device.unregistered"
    /// A forget is done: the device is gone.
    case deleted = "device.deleted"
}

/// Why a device ended `unregistered` (the `reason` of `device.unregistered`).
public enum UnregisterReason: String, Sendable, Hashable, CaseIterable, Codable {
    /// The backend removed the token (`DELETE .../push-token`).
    case removed
    /// The token arrived on another device of the app.
    case moved
    /// A backend reported the token dead (`POST .../tokens/invalidate`).
    case invalidated
    /// Not seen for the app's `retention.unregisterAfter`.
    case expired
    /// A start with another `clientId`.
    case clientChanged = "client-changed"
}
