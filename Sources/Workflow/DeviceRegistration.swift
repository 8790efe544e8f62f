import Foundation

/// The device states of the contract.
public enum DeviceStateName: String, Sendable, CaseIterable {
    case pending, registered, retrying, failed, unregistered

    /// `pending`: work queued, no error on the current step; `retrying`: the current step's last attempt
    /// failed transiently; `failed`: nothing can go until a new intent; otherwise `registered` when ME
    /// holds the newest token, else `unregistered`.
    public static func of(_ state: DeviceState, pending: Int) -> DeviceStateName {
        if state.failed { return .failed }
        if pending > 0 { return state.lastError?.nextAttemptAt != nil ? .retrying : .pending }
        return state.pushTokenSent != nil ? .registered : .unregistered
    }
}

/// What the API keeps beside the engine's state: the newest request, for the status.
public struct DeviceRegistration: Sendable, Hashable {
    public var key: DeviceKey
    public var provider: String?
    public var platform: String
    /// The newest requested token's hash (queued or at ME); nil after a removal or a move.
    public var tokenHash: String?
    public var pending: Int
    public var updatedAt: Date
    /// The newest backend write for the device, deduplicated ones included (`lastSeenAt` in the status).
    public var lastSeenAt: Date
    /// `lastSeenAt` nil: the device was last seen when it was last updated.
    public init(key: DeviceKey, provider: String?, platform: String, tokenHash: String?, pending: Int, updatedAt: Date, lastSeenAt: Date? = nil) {
        self.key = key
        self.provider = provider
        self.platform = platform
        self.tokenHash = tokenHash
        self.pending = pending
        self.updatedAt = updatedAt
        self.lastSeenAt = lastSeenAt ?? updatedAt
    }
}

public enum Timestamp {
    /// RFC 3339 UTC with milliseconds.
    ///
    /// Written by hand for 1970 through 9999 (a status holds several of these, and making an
    /// `ISO8601DateFormatter` costs more than the rest of the status); the same text as
    /// `ISO8601DateFormatter` with `.withInternetDateTime, .withFractionalSeconds`, which also rounds to
    /// the nearest millisecond. Other years go to the formatter.
    public static func iso(_ date: Date) -> String {
        let t = date.timeIntervalSince1970 * 1000
        guard t.isFinite, t >= 0, t < 253_402_300_799_000 else { return formatterISO(date) }
        let ms = Int64(t.rounded(.toNearestOrAwayFromZero))
        let days = ms / 86_400_000
        var rest = ms - days * 86_400_000
        let hour = rest / 3_600_000
        rest -= hour * 3_600_000
        let minute = rest / 60_000
        rest -= minute * 60_000
        let second = rest / 1000
        let milli = rest - second * 1000
        // The civil date of a day count since 1970-01-01 (proleptic Gregorian, eras of 400 years).
        let z = days + 719_468
        let era = z / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        return String(unsafeUninitializedCapacity: 24) { out in
            func put(_ value: Int64, _ at: Int, _ width: Int) {
                var v = value
                for i in stride(from: at + width - 1, through: at, by: -1) {
                    out[i] = UInt8(48 + v % 10)
                    v /= 10
                }
            }
            put(year, 0, 4); out[4] = UInt8(ascii: "-")
            put(month, 5, 2); out[7] = UInt8(ascii: "-")
            put(day, 8, 2); out[10] = UInt8(ascii: "T")
            put(hour, 11, 2); out[13] = UInt8(ascii: ":")
            put(minute, 14, 2); out[16] = UInt8(ascii: ":")
            put(second, 17, 2); out[19] = UInt8(ascii: ".")
            put(milli, 20, 3); out[23] = UInt8(ascii: "Z")
            return 24
        }
    }

    static func formatterISO(_ date: Date) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f.string(from: date)
    }
}
