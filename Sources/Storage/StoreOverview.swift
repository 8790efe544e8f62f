import Foundation

/// Counts for operators: devices by state and provider, queued intents, the newest failures.
public struct StoreOverview: Sendable, Codable {
    public struct AppCounts: Sendable, Codable {
        public var total: Int = 0
        public var byState: [String: Int] = [:]
        public var byProvider: [String: Int] = [:]
        public var queuedIntents: Int = 0
        public init() {}
    }
    public struct Failure: Sendable, Codable, Equatable {
        public var appCode: String
        public var deviceId: String
        public var step: String
        public var status: Int?
        public var message: String
        public var at: String
    }
    public var apps: [String: AppCounts]
    /// When the oldest due work was due (nil when nothing is due).
    public var oldestDueAt: Date?
    public var recentFailures: [Failure]
}
