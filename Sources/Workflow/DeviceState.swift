import Foundation
import MobileEngage

/// What the bridge remembers about one device, as the SDK would on the phone.
///
/// Owned by the engine: only workflow transitions change it. The API only queues intents.
public struct DeviceState: Sendable, Hashable, Codable {
    // Identity at ME.
    public var clientId: String

    // What ME knows (the SDK's memory).
    public var clientState: String?
    public var contactToken: String?
    public var refreshToken: String?
    /// The contact the stored contact token belongs to.
    public var linkedContact: ContactRequest?
    /// Hash of the last device info ME accepted (leaves out `sdkVersion`).
    public var deviceInfoHashSent: String?
    /// The token ME holds for this client.
    public var pushTokenSent: TokenRef?
    /// Set after a 401 refresh cycle, a login or a logout: the token is sent again, as the SDKs do.
    public var resendPushToken: Bool
    /// A token whose `PUT` got no answer (a timeout or a dropped connection): ME may hold it, so a move or a
    /// removal deletes it as if it were sent. Cleared by the next acknowledged `PUT` or `DELETE`.
    public var pushTokenUncertain: TokenRef?
    public var lastRequestOrder: Int64
    /// The `deviceEventState` of ME's last v4 events answer, echoed in the next events request (as the SDKs).
    public var deviceEventState: MEJSON?

    // What the backend asked for, from the intents already completed.
    public var platform: String
    public var info: DeviceInfo
    public var wantedContact: ContactRequest?
    public var wantedToken: TokenRef?

    // The current step's retry bookkeeping.
    public var attempts: Int
    public var refreshCycles: Int
    public var needsRefresh: Bool
    public var relinked: Bool
    public var failed: Bool
    public var waitingFor: String?
    public var lastError: LastError?

    public var steps: StepTimes

    public init(clientId: String, platform: String) {
        self.clientId = clientId
        self.clientState = nil
        self.contactToken = nil
        self.refreshToken = nil
        self.linkedContact = nil
        self.deviceInfoHashSent = nil
        self.pushTokenSent = nil
        self.resendPushToken = false
        self.pushTokenUncertain = nil
        self.lastRequestOrder = 0
        self.deviceEventState = nil
        self.platform = platform
        self.info = DeviceInfo()
        self.wantedContact = nil
        self.wantedToken = nil
        self.attempts = 0
        self.refreshCycles = 0
        self.needsRefresh = false
        self.relinked = false
        self.failed = false
        self.waitingFor = nil
        self.lastError = nil
        self.steps = StepTimes()
    }

    /// Whether ME holds (or may hold, after an unanswered `PUT`) the token with this hash on this client.
    public func holdsAtME(tokenHash: String) -> Bool {
        pushTokenSent?.tokenHash == tokenHash || pushTokenUncertain?.tokenHash == tokenHash
    }

    /// Everything ME knew about the old client is dropped; what the backend asked for stays.
    public func resetForNewClient(_ clientId: String) -> DeviceState {
        var fresh = DeviceState(clientId: clientId, platform: platform)
        fresh.info = info
        fresh.wantedContact = wantedContact
        fresh.wantedToken = wantedToken
        fresh.lastRequestOrder = 0
        return fresh
    }
}

/// When each step last succeeded.
public struct StepTimes: Sendable, Hashable, Codable {
    public var clientAt: Date?
    public var contactAt: Date?
    public var pushTokenAt: Date?
    public init(clientAt: Date? = nil, contactAt: Date? = nil, pushTokenAt: Date? = nil) {
        self.clientAt = clientAt
        self.contactAt = contactAt
        self.pushTokenAt = pushTokenAt
    }
}

/// The status document's `lastError`.
public struct LastError: Sendable, Hashable, Codable {
    public var step: String
    /// HTTP status, or nil for a network error.
    public var status: Int?
    public var message: String
    public var attempts: Int
    public var at: Date
    /// When the step is tried again; nil when it will not be (permanent, or skipped).
    public var nextAttemptAt: Date?
    public init(step: String, status: Int?, message: String, attempts: Int, at: Date, nextAttemptAt: Date?) {
        self.step = step
        self.status = status
        self.message = message
        self.attempts = attempts
        self.at = at
        self.nextAttemptAt = nextAttemptAt
    }
}
