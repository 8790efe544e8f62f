import Foundation
import MobileEngage

/// Per-app settings the workflow needs.
public struct AppPolicy: Sendable, Hashable {
    /// Link new devices to an anonymous contact; when false a device waits for a login.
    public var anonymousContacts: Bool
    /// The internal event sent on every device start (`app:start`, `session:start`), or nil for none.
    public var startEvent: String?
    /// How the app code is addressed on client-service calls: `apps`, or `domains` for web push domain codes.
    public var codePath: MECodePath
    /// The events API for every device of the app; nil: the SDKs' choice per device platform (v4 for mobile,
    /// v3 for web push).
    public var eventsAPIVersion: MEEventsAPIVersion?

    public init(
        anonymousContacts: Bool = true, startEvent: String? = "app:start", codePath: MECodePath = .apps,
        eventsAPIVersion: MEEventsAPIVersion? = nil
    ) {
        self.anonymousContacts = anonymousContacts
        self.startEvent = startEvent
        self.codePath = codePath
        self.eventsAPIVersion = eventsAPIVersion
    }

    /// The events API a device on ME `platform` uses.
    public func eventsAPIVersion(platform: String) -> MEEventsAPIVersion {
        eventsAPIVersion ?? .sdkDefault(platform: platform)
    }
}

/// Exponential backoff with jitter between `initialDelay` and the capped exponential ceiling.
public struct RetryPolicy: Sendable, Hashable {
    public var initialDelayMs: Int
    public var maxDelayMs: Int
    public init(initialDelayMs: Int = 500, maxDelayMs: Int = 300_000) {
        self.initialDelayMs = initialDelayMs
        self.maxDelayMs = maxDelayMs
    }

    /// The delay before attempt `attempts + 1`, given the `attempts` failures so far (≥ 1).
    ///
    /// `jitter` in [0, 1) is passed in so the workflow stays pure. The ceiling doubles with every
    /// failure up to `maxDelayMs`; the delay is uniform between `initialDelayMs` and the ceiling, so
    /// retries of many devices spread out instead of arriving at ME together. A `Retry-After` is a
    /// floor: ME knows best when it can take the request again.
    public func delay(afterFailures attempts: Int, jitter: Double, retryAfterSeconds: Double?) -> Double {
        let initial = Double(max(1, initialDelayMs)) / 1000
        let cap = Double(max(initialDelayMs, maxDelayMs)) / 1000
        let exponent = Double(min(max(attempts - 1, 0), 40))
        let ceiling = min(cap, initial * pow(2, exponent))
        let base = initial + (ceiling - initial) * min(max(jitter, 0), 1)
        return max(base, retryAfterSeconds ?? 0)
    }
}
