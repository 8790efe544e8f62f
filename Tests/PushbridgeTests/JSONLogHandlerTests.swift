import Foundation
import Logging
import Synchronization
import Testing
@testable import ServerSupport

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

@Suite("Text log lines: metadata handed over when a line is written")
struct MetadataDeferringLogHandlerTests {
    @Test("metadata set on the logger, before and after, and the level reach the wrapped handler")
    func deferredMetadata() throws {
        let lines = Mutex<[String]>([])
        var logger = Logger(label: "t") { label in
            var inner = JSONLogHandler(label: label, level: .notice) { line in lines.withLock { $0.append(line) } }
            inner[metadataKey: "instance"] = "i-1"
            return MetadataDeferringLogHandler(inner)
        }
        logger[metadataKey: "hb.request.id"] = "h-1"
        logger.info("below the level")
        logger[metadataKey: "requestId"] = "r-1"
        logger.notice("first", metadata: ["app": "EMS12-34567"])
        logger[metadataKey: "requestId"] = "r-2"
        logger.logLevel = .info
        logger.info("second")
        let objects = try lines.withLock { $0 }.map { try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: String]) }
        #expect(objects.map { $0["message"] } == ["first", "second"])
        #expect(objects.map { $0["requestId"] } == ["r-1", "r-2"])
        #expect(objects.allSatisfy { $0["instance"] == "i-1" && $0["hb.request.id"] == "h-1" })
        #expect(objects[0]["app"] == "EMS12-34567")
        #expect(objects[1]["app"] == nil)
    }
}
