import Foundation
import Logging
import Synchronization
import Testing
@testable import PushbridgeServer

@Suite("JSON log lines")
struct JSONLogHandlerTests {
    @Test("one JSON object per line with level, message and metadata")
    func jsonLines() throws {
        let lines = Mutex<[String]>([])
        var logger = Logger(label: "t") { label in JSONLogHandler(label: label, level: .debug) { line in lines.withLock { $0.append(line) } } }
        logger[metadataKey: "requestId"] = "r-1"
        logger.info("hello", metadata: ["app": "EMS12-34567"])
        logger.trace("dropped below the level")
        let captured = lines.withLock { $0 }
        #expect(captured.count == 1)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(captured[0].utf8)) as? [String: Any])
        #expect(object["message"] as? String == "hello")
        #expect(object["level"] as? String == "info")
        #expect(object["requestId"] as? String == "r-1")
        #expect(object["app"] as? String == "EMS12-34567")
        #expect(object["ts"] is String)
    }
}
