import Workflow

/// What the rules of an API write need, read from a store in the write's transaction, and the pure decision
/// (`Intake.decide`) on it. Both stores read these and apply the decision; the rules themselves are in `Intake`.
struct IntakeReads {
    var device: StoredDevice?
    /// The device's queued intents in processing order.
    var queued: [Intent]
    var decision: IntakeDecision

    init(_ write: DeviceWrite, device: StoredDevice?, queued: [Intent], holder: DeviceKey?, policy: AppPolicy) {
        self.device = device
        self.queued = queued
        decision = Intake.decide(write, view: IntakeView(exists: device != nil, state: device?.state, queued: queued, tokenHolder: holder), policy: policy)
    }

    /// The answer to a write that changes nothing (unknown device, deduplicated), or nil when it must be stored.
    func unchangedOutcome() throws -> AcceptResult? {
        switch decision {
        case .unknownDevice: return .unknownDevice
        case .deduplicated: return try device.map { .deduplicated($0.snapshot) } ?? .unknownDevice
        case .enqueue: return nil
        }
    }
}
