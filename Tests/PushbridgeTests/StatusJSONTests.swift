import Foundation
@testable import PushbridgeServer
import TestSupport
import Testing
import Workflow

@Suite("Status document written without JSONEncoder")
struct StatusJSONTests {
    @Test("The same bytes as JSONEncoder (sorted keys, slashes unescaped) for 3,000 random statuses")
    func sameAsEncoder() throws {
        var g = ModelGenerator(seed: 42)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        for i in 0..<3000 {
            let registration = DeviceRegistration(
                key: DeviceKey(appCode: g.string(), deviceId: g.string()), provider: g.maybe { $0.string() }, platform: g.string(),
                tokenHash: g.maybe { $0.string() }, pending: [0, 1, 5].randomElement(using: &g.rng)!,
                updatedAt: g.date(), lastSeenAt: g.maybe { $0.date() })
            let dedup: Bool? = [nil, true, false].randomElement(using: &g.rng)!
            let status = DeviceStatus(registration: registration, state: g.state(), deduplicated: dedup)
            let expected = try encoder.encode(status)
            let actual = status.jsonBytes()
            #expect(Array(expected) == actual, "status \(i): \(String(decoding: actual, as: UTF8.self)) vs \(String(decoding: expected, as: UTF8.self))")
            if Array(expected) != actual { return }
        }
    }
}
