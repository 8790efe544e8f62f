import Foundation
import MobileEngage
import Webhooks
import Workflow

/// Everything `pushbridge serve` is configured with, validated.
public struct BridgeConfiguration: Sendable {
    public struct HTTP: Sendable {
        public var host = "0.0.0.0"
        public var port = 8080
    }
    public struct Metrics: Sendable {
        /// Serve `/metrics` (and nothing else) on this port of `http.host`, and not on the API's port; nil: on the
        /// API's port. 0: any free port (tests).
        public var port: Int?
    }
    public struct Emarsys: Sendable {
        /// Start the embedded ME sandbox and point the URLs at it.
        public var sandbox = true
        public var clientServiceURL = "https://me-client.eservice.emarsys.net"
        public var eventServiceURL = "https://mobile-events.eservice.emarsys.net"
        /// The events API for every app; nil: per app (`apps[].eventsAPIVersion`, else v4 for mobile devices and
        /// v3 for web push, as the SDKs).
        public var eventsAPIVersion: MEEventsAPIVersion?
        /// Sent as `sdkVersion` and `X-EMARSYS-SDK-VERSION`: the value agreed with Emarsys, else the bridge's version.
        public var sdkVersion = PushbridgeVersion.current
        /// The pause between a successful contact-token refresh and the replay (both SDKs wait 500 ms).
        public var refreshReplayDelayMs = 500
        /// Android's SDK waits 20 s for an ME answer, iOS's 30 s.
        public var requestTimeoutSeconds = 20.0
        public var maxConcurrentRequests = 64
        public var retry = RetryPolicy()
        /// Lifetime of the embedded sandbox's contact tokens.
        public var sandboxContactTokenLifetimeSeconds = 3600
        /// Origins a browser page may call the sandbox from (CORS): `*` (any), exact origins, or none.
        public var sandboxAllowedOrigins = ["*"]
        /// How long a device stays with the instance that claimed it without a commit; a crashed
        /// instance's devices go to another after this.
        public var leaseSeconds = 10
    }
    /// `apps[].retention`: a device no backend wrote for (`lastSeenAt`) in `unregisterAfter` has its token removed at ME
    /// and ends `unregistered` (reason `expired`); in `forgetAfter` it is forgotten as by `DELETE`. Seconds; nil: never.
    public struct Retention: Sendable, Hashable {
        public var unregisterAfter: TimeInterval?
        public var forgetAfter: TimeInterval?
        public init(unregisterAfter: TimeInterval? = nil, forgetAfter: TimeInterval? = nil) {
            self.unregisterAfter = unregisterAfter
            self.forgetAfter = forgetAfter
        }
        public var isOff: Bool { unregisterAfter == nil && forgetAfter == nil }
    }

    public struct App: Sendable {
        public var code: String
        public var contactFieldId: Int
        public var anonymousContacts: Bool
        /// nil: no start event (`none` in the file).
        public var startEvent: String?
        /// Bearer keys allowed for this app (file keys plus `apiKeysEnv`); empty = no auth.
        public var apiKeys: [String]
        /// `apps` or `domains` (web push domain codes).
        public var clientPath: MECodePath
        /// This app's events API; nil: the global key, else per device platform.
        public var eventsAPIVersion: MEEventsAPIVersion?
        /// Where this app's device events are sent (`apps[].webhooks`).
        public var webhooks: [Webhook] = []
        /// How long a device may go unseen (`apps[].retention`); both off by default.
        public var retention = Retention()
        /// At most this many ME requests of the app per second, per instance (`apps[].meRequestsPerSecond`); nil: none.
        public var meRequestsPerSecond: Int?

        public init(
            code: String, contactFieldId: Int = 3, anonymousContacts: Bool = true, startEvent: String? = "app:start", apiKeys: [String] = [],
            clientPath: MECodePath = .apps, eventsAPIVersion: MEEventsAPIVersion? = nil
        ) {
            self.code = code
            self.contactFieldId = contactFieldId
            self.anonymousContacts = anonymousContacts
            self.startEvent = startEvent
            self.apiKeys = apiKeys
            self.clientPath = clientPath
            self.eventsAPIVersion = eventsAPIVersion
        }

        /// The workflow's settings for this app; `eventsAPIVersion` is the global `emarsys.eventsAPIVersion`.
        public func policy(eventsAPIVersion global: MEEventsAPIVersion?) -> AppPolicy {
            AppPolicy(anonymousContacts: anonymousContacts, startEvent: startEvent, codePath: clientPath, eventsAPIVersion: eventsAPIVersion ?? global)
        }
    }

    public var http = HTTP()
    public var metrics = Metrics()
    /// `instance.id`: this instance's stable name among those sharing a database (its leases carry it, and a restart
    /// gives back the earlier run's at once). Nil: the host name and `http.port`.
    public var instanceId: String?
    /// `sqlite://path` (relative to the working directory; `sqlite:///abs` is absolute) or `postgres://...`.
    public var storageURL = "sqlite://data/pushbridge.sqlite"
    /// AES-256 key (32 bytes, base64) for device data at rest. Secret: set it through the environment.
    public var encryptionKey: String?
    /// A file holding the key. Neither set: `pushbridge.key` beside the SQLite file, created on first start.
    public var encryptionKeyFile: String?
    /// PostgreSQL connections per instance (`storage.poolSize`); unused for SQLite.
    public var storagePoolSize = 10
    /// How long an API request waits for storage (`storage.timeoutMs`) before it answers 503 with `Retry-After`
    /// instead of holding the client: a database that is down, restarting or out of connections.
    public var storageTimeoutMs = 5000
    public var emarsys = Emarsys()
    public var limits = QueueLimitsConfig()
    public var webhooks = WebhookSettings()
    public var history = HistorySettings()
    /// Descriptor files that add to or override the built-in providers; missing is fine.
    public var providersDirectory: String? = "providers"
    public var logLevel = "info"
    /// `text` (human-readable) or `json` (one object per line).
    public var logFormat = "text"
    /// After SIGTERM: how long `/ready` and the API answer 503 before the server stops listening
    /// (time for a load balancer to notice).
    public var shutdownDrainSeconds = 0.0
    /// After SIGTERM: how long in-flight ME calls may take before they are cancelled.
    public var shutdownDeadlineSeconds = 30.0
    public var apps: [App] = [BridgeConfiguration.demoApp]

    /// One receiver of an app's device events (`apps[].webhooks[]`).
    public struct Webhook: Sendable, Hashable {
        /// http(s); the events are POSTed here.
        public var url: String
        /// The signing secret (`secret`, or the variable `secretEnv` names). Never logged.
        public var secret: WebhookSecret
        /// The events sent here; nil: all of them.
        public var events: Set<WebhookEvent>?

        public init(url: String, secret: WebhookSecret, events: Set<WebhookEvent>? = nil) {
            self.url = url
            self.secret = secret
            self.events = events
        }

        public func wants(_ event: WebhookEvent) -> Bool { events?.contains(event) ?? true }
    }

    /// `history.*`: how much of each device's history is kept.
    public struct HistorySettings: Sendable {
        /// The newest entries kept per device.
        public var perDevice = 100
        /// Entries older than this are deleted.
        public var maxAgeDays = 30
    }

    /// `webhooks.*`: for every endpoint.
    public struct WebhookSettings: Sendable {
        /// A message not answered 2xx within this long after it was made is given up.
        public var maxAgeHours = 24
        /// One delivery attempt's deadline.
        public var timeoutSeconds = 10.0
        /// The outbox's bound: at this many undelivered messages new ones are dropped (counted in `/metrics`,
        /// shown in `/ready`) until it drains, so a dead endpoint cannot fill the database.
        public var maxBacklog = 100_000
        /// Backoff bounds between attempts of one message (full jitter below the doubling ceiling).
        public var retryInitialDelayMs = 5000
        public var retryMaxDelayMs = 3_600_000
    }

    public struct QueueLimitsConfig: Sendable {
        public var maxQueuedIntents = 1_000_000
        public var maxQueuedIntentsPerApp = 250_000
    }

    /// The app the built-in defaults serve, so `pushbridge serve` works with no file at all.
    public static let demoApp = App(code: "EMS12-34567", contactFieldId: 3, anonymousContacts: true, startEvent: "app:start", apiKeys: [])

    public init() {}

    public func app(_ code: String) -> App? { apps.first { $0.code == code } }

    /// The SQLite file path of `storageURL`, or nil for another scheme.
    public var sqlitePath: String? {
        guard storageURL.hasPrefix("sqlite://") else { return nil }
        return String(storageURL.dropFirst("sqlite://".count))
    }
}
