import Foundation
import MobileEngage
import Testing
@testable import Workflow

/// Seeded random models: every field of every type takes values and nils, so that a field the binary form
/// forgot, or wrote in another order than it reads, shows up as a difference.
struct ModelGenerator {
    struct SplitMix64: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    var rng: SplitMix64

    init(seed: UInt64) { rng = SplitMix64(state: seed) }

    mutating func bool() -> Bool { Bool.random(using: &rng) }
    mutating func maybe<T>(_ make: (inout ModelGenerator) -> T) -> T? { bool() ? make(&self) : nil }

    /// Strings with what trips encoders: quotes, backslashes, control characters, DEL, non-ASCII, U+2028, emoji.
    mutating func string() -> String {
        let pieces = ["a", "Z", "0", " ", "\"", "\\", "/", "\n", "\t", "\r", "\u{08}", "\u{0C}", "\u{01}", "\u{1F}", "\u{7F}", "é", "\u{2028}", "日本", "🙂", ":", "-"]
        return (0..<Int.random(in: 0...12, using: &rng)).map { _ in pieces.randomElement(using: &rng)! }.joined()
    }

    mutating func int() -> Int { [0, 1, -1, 127, 128, 300, Int.max, Int.min, Int.random(in: -1_000_000...1_000_000, using: &rng)].randomElement(using: &rng)! }

    mutating func date() -> Date {
        // Whole milliseconds as the engine makes them, and arbitrary doubles.
        bool()
            ? Date(timeIntervalSince1970: Double(Int64.random(in: 0...4_000_000_000_000, using: &rng)) / 1000)
            : Date(timeIntervalSince1970: Double.random(in: -1e9...1e10, using: &rng))
    }

    mutating func token() -> TokenRef {
        TokenRef(provider: string(), platform: string(), pushToken: string(), tokenHash: string())
    }

    mutating func contact() -> ContactRequest {
        switch Int.random(in: 0...2, using: &rng) {
        case 0: .anonymous
        case 1: .identified(fieldId: int(), value: string())
        default: .openId(fieldId: int(), token: string())
        }
    }

    mutating func setting(depth: Int = 0) -> MEJSON {
        switch Int.random(in: 0...(depth > 2 ? 3 : 5), using: &rng) {
        case 0: return .string(string())
        case 1: return .bool(bool())
        case 2: return .number([0.5, -3, 1e300, 42].randomElement(using: &rng)!)
        case 3: return .null
        case 4: return .array((0..<Int.random(in: 0...3, using: &rng)).map { _ in setting(depth: depth + 1) })
        default:
            var o: [String: MEJSON] = [:]
            for _ in 0..<Int.random(in: 0...3, using: &rng) { o[string()] = setting(depth: depth + 1) }
            return .object(o)
        }
    }

    mutating func info() -> DeviceInfo {
        DeviceInfo(
            applicationVersion: maybe { $0.string() }, deviceModel: maybe { $0.string() }, osVersion: maybe { $0.string() },
            language: maybe { $0.string() }, timezone: maybe { $0.string() },
            pushSettings: maybe { g in
                var o: [String: MEJSON] = [:]
                for _ in 0..<Int.random(in: 0...4, using: &g.rng) { o[g.string()] = g.setting() }
                return o
            })
    }

    mutating func state() -> DeviceState {
        var s = DeviceState(clientId: string(), platform: string())
        s.clientState = maybe { $0.string() }
        s.contactToken = maybe { $0.string() }
        s.refreshToken = maybe { $0.string() }
        s.linkedContact = maybe { $0.contact() }
        s.deviceInfoHashSent = maybe { $0.string() }
        s.pushTokenSent = maybe { $0.token() }
        s.resendPushToken = bool()
        s.lastRequestOrder = Int64(int())
        s.info = info()
        s.wantedContact = maybe { $0.contact() }
        s.wantedToken = maybe { $0.token() }
        s.attempts = int()
        s.refreshCycles = int()
        s.needsRefresh = bool()
        s.relinked = bool()
        s.failed = bool()
        s.waitingFor = maybe { $0.string() }
        s.lastError = maybe { g in
            LastError(step: g.string(), status: g.maybe { $0.int() }, message: g.string(), attempts: g.int(), at: g.date(), nextAttemptAt: g.maybe { $0.date() })
        }
        s.steps = StepTimes(clientAt: maybe { $0.date() }, contactAt: maybe { $0.date() }, pushTokenAt: maybe { $0.date() })
        s.pushTokenUncertain = maybe { $0.token() }
        s.deviceEventState = maybe { $0.setting() }
        return s
    }

    mutating func payload() -> IntentPayload {
        switch Int.random(in: 0...9, using: &rng) {
        case 0:
            return .start(StartIntent(
                provider: string(), platform: string(), token: maybe { $0.token() }, info: info(), contact: maybe { $0.contact() },
                clientId: maybe { $0.string() }))
        case 1: return .setToken(token())
        case 2: return .removeToken
        case 3: return .login(fieldId: int(), value: string())
        case 4: return .logout
        case 5:
            return .events((0..<Int.random(in: 0...3, using: &rng)).map { _ in
                CustomEvent(name: string(), timestamp: string(), attributes: maybe { g in
                    var a: [String: String] = [:]
                    for _ in 0..<Int.random(in: 0...3, using: &g.rng) { a[g.string()] = g.string() }
                    return a
                }, sessionId: maybe { $0.string() })
            })
        case 6: return .release(tokenHash: string())
        case 7: return .releaseAll(tokenHash: string())
        case 8: return .openIdLogin(fieldId: int(), token: string())
        default: return .forget
        }
    }
}

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
                updatedAt: g.date())
            let dedup: Bool? = [nil, true, false].randomElement(using: &g.rng)!
            let status = DeviceStatus(registration: registration, state: g.state(), deduplicated: dedup)
            let expected = try encoder.encode(status)
            let actual = status.jsonBytes()
            #expect(Array(expected) == actual, "status \(i): \(String(decoding: actual, as: UTF8.self)) vs \(String(decoding: expected, as: UTF8.self))")
            if Array(expected) != actual { return }
        }
    }
}
