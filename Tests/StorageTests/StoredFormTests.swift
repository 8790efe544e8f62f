import Foundation
import MobileEngage
@testable import Storage
import TestSupport
import Testing
import Workflow

@Suite("Stored form of the engine's state and intents")
struct StoredFormTests {
    @Test("2,000 random device states and intent payloads come back equal")
    func roundTrip() throws {
        var g = ModelGenerator(seed: 20_261_129)
        for _ in 0..<1000 {
            let state = g.state()
            #expect(try StoredForm.decode(DeviceState.self, from: StoredForm.encode(state)) == state)
            let payload = g.payload()
            #expect(try StoredForm.decode(IntentPayload.self, from: StoredForm.encode(payload)) == payload)
        }
    }

    @Test("Equal values give equal bytes (dictionaries in key order)")
    func deterministic() {
        var g = ModelGenerator(seed: 7)
        for _ in 0..<200 {
            let state = g.state()
            var copy = state
            // Another capacity and insertion order: another iteration order of the same dictionary.
            copy.info.pushSettings = state.info.pushSettings.map { settings in
                var d = [String: MEJSON](minimumCapacity: 97)
                for (k, v) in settings.reversed() { d[k] = v }
                return d
            }
            #expect(StoredForm.encode(state) == StoredForm.encode(copy))
        }
    }

    @Test("An event written in version 2 (before sessionId) still reads, with none")
    func eventReadsVersionTwo() throws {
        let payload = IntentPayload.events([CustomEvent(name: "a", timestamp: "t", attributes: ["k": "v"])])
        // Version 2 is version 3 without the event's trailing optional (one 0 byte for nil).
        var bytes = StoredForm.encode(payload)
        #expect(bytes.removeLast() == 0)
        bytes[0] = 2
        #expect(try StoredForm.decode(IntentPayload.self, from: bytes) == payload)
    }

    /// Each version appended optionals at the end of the state: version 1 lacks `pushTokenUncertain` and
    /// `deviceEventState`, version 2 the latter. Written with them nil, an older form is the newer one without its
    /// trailing nil bytes.
    @Test("A state written in an earlier version still reads, with the fields added since left empty", arguments: [1, 2])
    func readsEarlierVersions(version: Int) throws {
        var g = ModelGenerator(seed: UInt64(5 + version))
        for _ in 0..<50 {
            var state = g.state()
            if version < 2 { state.pushTokenUncertain = nil }
            state.deviceEventState = nil
            var bytes = StoredForm.encode(state)
            for _ in version..<Int(StoredForm.version) { #expect(bytes.removeLast() == 0) }
            bytes[0] = UInt8(version)
            #expect(try StoredForm.decode(DeviceState.self, from: bytes) == state)
        }
    }

    @Test("Every truncation, and an unknown version, throws instead of reading garbage")
    func truncated() {
        var g = ModelGenerator(seed: 99)
        for _ in 0..<50 {
            let bytes = StoredForm.encode(g.state())
            for n in 0..<bytes.count {
                #expect(throws: StoredFormError.self) { try StoredForm.decode(DeviceState.self, from: bytes.prefix(n)) }
            }
            #expect(throws: StoredFormError.self) { try StoredForm.decode(DeviceState.self, from: bytes + [0]) }
            var other = bytes
            other[0] = StoredForm.version + 1
            #expect(throws: StoredFormError.self) { try StoredForm.decode(DeviceState.self, from: other) }
        }
    }

    @Test("Smaller than the JSON it replaces")
    func smaller() throws {
        var g = ModelGenerator(seed: 3)
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .millisecondsSince1970
        var binary = 0
        var json = 0
        for _ in 0..<200 {
            let state = g.state()
            binary += StoredForm.encode(state).count
            json += try encoder.encode(state).count
        }
        #expect(binary * 2 < json, "binary \(binary) bytes, JSON \(json) bytes")
    }
}
