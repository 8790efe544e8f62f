import Foundation
import Workflow

/// The device status document of the contract, as `GET` answers it and every write's 2xx carries. Holds only hashes and
/// ids, never a token or contact value. Built from what a store returns (registration and engine state); written by
/// `jsonBytes()`.
public struct DeviceStatus: Sendable, Hashable, Codable {
    public struct Contact: Sendable, Hashable, Codable {
        public var kind: String
        public var fieldId: Int?
    }
    public struct Step: Sendable, Hashable, Codable {
        public var done: Bool
        public var at: String?
        public var tokenHash: String?
    }
    public struct Steps: Sendable, Hashable, Codable {
        public var client: Step
        public var contact: Step
        public var pushToken: Step
    }
    public struct ErrorInfo: Sendable, Hashable, Codable {
        public var step: String
        public var status: Int?
        public var message: String
        public var attempts: Int
        public var at: String
        public var nextAttemptAt: String?

        /// `status` and `nextAttemptAt` are written as null, never left out.
        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(step, forKey: .step)
            try c.encode(status, forKey: .status)
            try c.encode(message, forKey: .message)
            try c.encode(attempts, forKey: .attempts)
            try c.encode(at, forKey: .at)
            try c.encode(nextAttemptAt, forKey: .nextAttemptAt)
        }
    }

    public var appCode: String
    public var deviceId: String
    public var clientId: String
    public var provider: String?
    public var platform: String
    public var tokenHash: String?
    public var state: String
    public var contact: Contact
    public var steps: Steps
    public var pending: Int
    public var deduplicated: Bool?
    public var waitingFor: String?
    public var lastError: ErrorInfo?
    public var updatedAt: String
    /// The newest backend write for the device, deduplicated ones included.
    public var lastSeenAt: String

    enum CodingKeys: String, CodingKey {
        case appCode, deviceId, clientId, provider, platform, tokenHash, state, contact, steps, pending, deduplicated,
            waitingFor, lastError, updatedAt, lastSeenAt
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(appCode, forKey: .appCode)
        try c.encode(deviceId, forKey: .deviceId)
        try c.encode(clientId, forKey: .clientId)
        try c.encode(provider, forKey: .provider)
        try c.encode(platform, forKey: .platform)
        try c.encode(tokenHash, forKey: .tokenHash)  // null, not absent, after a removal
        try c.encode(state, forKey: .state)
        try c.encode(contact, forKey: .contact)
        try c.encode(steps, forKey: .steps)
        try c.encode(pending, forKey: .pending)
        try c.encodeIfPresent(deduplicated, forKey: .deduplicated)
        try c.encodeIfPresent(waitingFor, forKey: .waitingFor)
        try c.encode(lastError, forKey: .lastError)
        try c.encode(updatedAt, forKey: .updatedAt)
        try c.encode(lastSeenAt, forKey: .lastSeenAt)
    }
}

extension DeviceStatus {
    public init(registration r: DeviceRegistration, state s: DeviceState, deduplicated: Bool? = nil) {
        let contact = Contact(kind: s.linkedContact?.kind ?? "none", fieldId: s.linkedContact?.fieldId)
        self.init(
            appCode: r.key.appCode,
            deviceId: r.key.deviceId,
            clientId: s.clientId,
            provider: r.provider,
            platform: r.platform,
            tokenHash: r.tokenHash,
            state: DeviceStateName.of(s, pending: r.pending).rawValue,
            contact: contact,
            steps: Steps(
                client: Step(done: s.deviceInfoHashSent != nil && s.clientState != nil, at: s.steps.clientAt.map(Timestamp.iso)),
                contact: Step(done: s.contactToken != nil, at: s.steps.contactAt.map(Timestamp.iso)),
                pushToken: Step(done: s.pushTokenSent != nil, at: s.steps.pushTokenAt.map(Timestamp.iso), tokenHash: s.pushTokenSent?.tokenHash)
            ),
            pending: r.pending,
            deduplicated: deduplicated,
            waitingFor: s.waitingFor,
            lastError: s.lastError.map {
                ErrorInfo(step: $0.step, status: $0.status, message: $0.message, attempts: $0.attempts, at: Timestamp.iso($0.at), nextAttemptAt: $0.nextAttemptAt.map(Timestamp.iso))
            },
            updatedAt: Timestamp.iso(r.updatedAt),
            lastSeenAt: Timestamp.iso(r.lastSeenAt)
        )
    }
}

