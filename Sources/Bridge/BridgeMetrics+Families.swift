import Metrics

/// Every metric family the README documents, made at zero when a server starts: an alert or a `rate()` over a counter
/// that nothing has moved yet has a series to work on from the first scrape.
extension BridgeMetrics {
    /// The label values each family can take (none is a token, a device id or a contact value).
    public enum Labels {
        public static let meEndpoints = ["client", "contact", "contact_anonymous", "contact_token", "push_token_put", "push_token_delete", "events"]
        public static let meOutcomes = ["success", "transient", "permanent", "unauthorized"]
        /// The endpoints a deduplicated API write saves (`BridgeAPI.endpoint(of:)`).
        public static let deduplicatedEndpoints = ["push_token_put", "push_token_delete", "contact", "contact_anonymous", "other"]
        public static let engineStoreOperations = ["claim", "next_due", "load", "commit", "commit_and_load", "release", "release_orphans"]
        public static let apiStoreOperations = ["accept", "invalidate", "snapshot", "list", "overview", "ready", "metrics"]
        public static let webhookOutcomes = ["delivered", "failed", "given_up"]
        public static let idempotencyOutcomes = ["replayed", "in_progress", "reused"]
        public static let retentionActions = ["unregistered", "forgotten"]
    }

    /// Makes every family at zero but those read from storage: the API's routes (`(route, method, status)` of their
    /// usual answer), the configured apps (waits for the rate toward ME), and the bridge's `version`
    /// (`pushbridge_build_info`, always 1).
    public func makeFamilies(routes: [(route: String, method: String, status: Int)], apps: [String], version: String) {
        for endpoint in Labels.meEndpoints {
            for outcome in Labels.meOutcomes {
                Counter(label: "pushbridge_me_calls_total", dimensions: [("endpoint", endpoint), ("outcome", outcome)], factory: factory)
            }
            Timer(label: "pushbridge_me_call_duration_seconds", dimensions: [("endpoint", endpoint)], preferredDisplayUnit: .seconds, factory: factory)
        }
        for endpoint in Labels.deduplicatedEndpoints {
            Counter(label: "pushbridge_me_calls_total", dimensions: [("endpoint", endpoint), ("outcome", "deduplicated")], factory: factory)
        }
        for operation in Labels.engineStoreOperations {
            Timer(label: "pushbridge_store_operation_duration_seconds", dimensions: [("operation", operation)], preferredDisplayUnit: .seconds, factory: factory)
        }
        for operation in Labels.engineStoreOperations + Labels.apiStoreOperations {
            Counter(label: "pushbridge_storage_errors_total", dimensions: [("operation", operation)], factory: factory)
        }
        for route in routes {
            Counter(label: "pushbridge_http_requests_total", dimensions: [("route", route.route), ("method", route.method), ("status", String(route.status))], factory: factory)
            Timer(label: "pushbridge_http_request_duration_seconds", dimensions: [("route", route.route), ("method", route.method)], preferredDisplayUnit: .seconds, factory: factory)
        }
        // Not the gauges read from storage (devices by state, queue depth, oldest due work): a zero before the first
        // read would be a false jump for `delta()` (the first scrape reads them, for every configured app).
        for label in [
            "pushbridge_contact_token_refreshes_total", "pushbridge_contact_relinks_total", "pushbridge_token_moves_total",
            "pushbridge_tokens_invalidated_total", "pushbridge_history_entries_dropped_total",
        ] {
            Counter(label: label, factory: factory)
        }
        for outcome in Labels.webhookOutcomes {
            Counter(label: "pushbridge_webhook_deliveries_total", dimensions: [("outcome", outcome)], factory: factory)
        }
        for label in ["pushbridge_webhook_backlog", "pushbridge_webhook_oldest_age_seconds", "pushbridge_webhook_backlog_full"] {
            gauge(label, [], 0)
        }
        for outcome in Labels.idempotencyOutcomes {
            Counter(label: "pushbridge_idempotent_requests_total", dimensions: [("outcome", outcome)], factory: factory)
        }
        for action in Labels.retentionActions {
            Counter(label: "pushbridge_retention_devices_total", dimensions: [("action", action)], factory: factory)
        }
        for app in apps {
            Timer(label: "pushbridge_me_rate_limit_wait_seconds", dimensions: [("app", app)], preferredDisplayUnit: .seconds, factory: factory)
        }
        gauge("pushbridge_build_info", [("version", version)], 1)
    }
}
