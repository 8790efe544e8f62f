import Hummingbird

/// A rejected ME request: the status to answer and a message naming the offending header or field.
///
/// Handlers throw it; the route glue turns it into a JSON error body `{"status", "error", "field"?}` so a
/// developer reading a bridge log sees exactly which field the sandbox refused.
struct MEFailure: Error, Sendable {
    var status: HTTPResponse.Status
    var message: String
    var field: String?

    static func badRequest(_ message: String, field: String? = nil) -> MEFailure {
        MEFailure(status: .badRequest, message: message, field: field)
    }

    static func unauthorized(_ message: String) -> MEFailure {
        MEFailure(status: .unauthorized, message: message, field: nil)
    }

    static func invalidField(_ field: String, _ requirement: String) -> MEFailure {
        MEFailure(status: .badRequest, message: "invalid field '\(field)': \(requirement)", field: field)
    }
}
