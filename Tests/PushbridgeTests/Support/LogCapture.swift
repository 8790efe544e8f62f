import Foundation
import Logging
import Synchronization

/// Collects every log line (message and metadata, as text) of the loggers made from it.
final class LogCapture: Sendable {
    private let lines = Mutex<[String]>([])

    func logger(level: Logger.Level = .trace) -> Logger {
        var l = Logger(label: "captured") { label in Handler(label: label, capture: self, level: level) }
        l.logLevel = level
        return l
    }

    var all: [String] { lines.withLock { $0 } }
    func append(_ line: String) { lines.withLock { $0.append(line) } }

    struct Handler: LogHandler {
        let label: String
        let capture: LogCapture
        var logLevel: Logger.Level
        var metadata: Logger.Metadata = [:]

        init(label: String, capture: LogCapture, level: Logger.Level) {
            self.label = label
            self.capture = capture
            self.logLevel = level
        }

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            let merged = metadata.merging(event.metadata ?? [:]) { $1 }
            capture.append("\(event.level) \(label) \(event.message) \(merged)")
        }
    }
}
