import Foundation
import MobileEngage
import Workflow

/// Seeded random models: every field of every type takes values and nils, so that a field the binary form
/// forgot, or wrote in another order than it reads, shows up as a difference.
public struct ModelGenerator {
    public var rng: SplitMix64

    public init(seed: UInt64) { rng = SplitMix64(seed: seed) }

    public mutating func bool() -> Bool { Bool.random(using: &rng) }
    public mutating func cause() -> ReleaseCause { [.moved, .invalidated, .expired][Int.random(in: 0..<3, using: &rng)] }
    public mutating func maybe<T>(_ make: (inout ModelGenerator) -> T) -> T? { bool() ? make(&self) : nil }

    /// Strings with what trips encoders: quotes, backslashes, control characters, DEL, non-ASCII, U+2028, emoji.
    public mutating func string() -> String {
        let pieces = ["a", "Z", "0", " ", "\"", "\\", "/", "\n", "\t", "\r", "\u{08}", "\u{0C}", "\u{01}", "\u{1F}", "\u{7F}", "é", "\u{2028}", "日本", "🙂", ":", "-"]
        return (0..<Int.random(in: 0...12, using: &rng)).map { _ in pieces.randomElement(using: &rng)! }.joined()
    }

    public mutating func int() -> Int { [0, 1, -1, 127, 128, 300, Int.max, Int.min, Int.random(in: -1_000_000...1_000_000, using: &rng)].randomElement(using: &rng)! }

    public mutating func date() -> Date {
        // Whole milliseconds as the engine makes them, and arbitrary doubles.
        bool()
            ? Date(timeIntervalSince1970: Double(Int64.random(in: 0...4_000_000_000_000, using: &rng)) / 1000)
            : Date(timeIntervalSince1970: Double.random(in: -1e9...1e10, using: &rng))
    }

    public mutating func token() -> TokenRef {
        TokenRef(provider: string(), platform: string(), pushToken: string(), tokenHash: string())
    }

    public mutating func contact() -> ContactRequest {
        switch Int.random(in: 0...2, using: &rng) {
        case 0: .anonymous
        case 1: .identified(fieldId: int(), value: string())
        default: .openId(fieldId: int(), token: string())
        }
    }

    public mutating func setting(depth: Int = 0) -> MEJSON {
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

    public mutating func info() -> DeviceInfo {
        DeviceInfo(
            applicationVersion: maybe { $0.string() }, deviceModel: maybe { $0.string() }, osVersion: maybe { $0.string() },
            language: maybe { $0.string() }, timezone: maybe { $0.string() },
            pushSettings: maybe { g in
                var o: [String: MEJSON] = [:]
                for _ in 0..<Int.random(in: 0...4, using: &g.rng) { o[g.string()] = g.setting() }
                return o
            })
    }

    public mutating func state() -> DeviceState {
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

    public mutating func payload() -> IntentPayload {
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
        case 6: return .release(tokenHash: string(), cause: cause())
        case 7: return .releaseAll(tokenHash: string(), cause: cause())
        case 8: return .openIdLogin(fieldId: int(), token: string())
        default: return .forget
        }
    }
}
