import Foundation

/// Bodies and header values exactly as the SDKs write them. Pure functions, no I/O.
public enum MEWireFormat {
    /// The JSON body of `call`.
    public static func body(of call: MECall) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        func encode<T: Encodable>(_ value: T) -> [UInt8] {
            // Encoding these plain value types cannot fail.
            (try? Array(encoder.encode(value))) ?? Array("{}".utf8)
        }
        switch call {
        case .setClient(let info): return encode(info)
        case .linkAnonymousContact, .removePushToken: return Array("{}".utf8)
        case .linkContact(let fieldId, let value):
            return encode(ContactBody(contactFieldId: fieldId, contactFieldValue: value))
        case .linkOpenIdContact(let fieldId, let token):
            return encode(OpenIdContactBody(contactFieldId: fieldId, openIdToken: token))
        case .refreshContactToken(let refreshToken): return encode(["refreshToken": refreshToken])
        case .setPushToken(let token): return encode(["pushToken": token])
        case .events(let events, let deviceEventState):
            return encode(EventsEnvelope(events: events, deviceEventState: deviceEventState))
        }
    }

    private struct ContactBody: Encodable { var contactFieldId: Int; var contactFieldValue: String }
    private struct OpenIdContactBody: Encodable { var contactFieldId: Int; var openIdToken: String }
    /// A nil `deviceEventState` is left out (the synthesised `encodeIfPresent`), as the SDKs leave it out
    /// until a v4 answer gave them one.
    private struct EventsEnvelope: Encodable {
        var events: [MEEvent]
        var clicks: [String] = []
        var viewedMessages: [String] = []
        var deviceEventState: MEJSON?
        init(events: [MEEvent], deviceEventState: MEJSON?) {
            self.events = events
            self.deviceEventState = deviceEventState
        }
    }

    /// The request headers for `call` under `context`.
    public static func headers(of call: MECall, context: MERequestContext, sdkVersion: String) -> [(String, String)] {
        var headers: [(String, String)] = [
            ("Content-Type", "application/json"),
            ("X-Client-Id", context.clientId),
            ("X-Request-Order", String(context.requestOrder)),
            ("X-EMARSYS-SDK-VERSION", sdkVersion),
            ("X-EMARSYS-SDK-MODE", "production"),
        ]
        if let state = context.clientState { headers.append(("X-Client-State", state)) }
        if call.carriesContactToken, let token = context.contactToken { headers.append(("X-Contact-Token", token)) }
        return headers
    }

    /// Reads `contactToken` and `refreshToken` from a contact answer body.
    /// Returns nil when the body is not a JSON object: the caller treats that as a broken answer.
    public static func contactTokens(from body: [UInt8]) -> (contactToken: String?, refreshToken: String?)? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else { return nil }
        return (object["contactToken"] as? String, object["refreshToken"] as? String)
    }

    /// Reads `deviceEventState` from a v4 events answer body (empty, or a JSON object that may hold in-app
    /// messages and actions the bridge has no use for).
    public static func deviceEventState(from body: [UInt8]) -> MEJSON? {
        guard !body.isEmpty, case .object(let object)? = try? JSONDecoder().decode(MEJSON.self, from: Data(body)) else { return nil }
        guard let state = object["deviceEventState"], state != .null else { return nil }
        return state
    }

    /// Parses `Retry-After`: delta-seconds or an HTTP date (RFC 9110 §10.2.3), relative to `now`.
    public static func retryAfterSeconds(_ value: String?, now: Date) -> Double? {
        guard let value = value?.trimmingCharacters(in: .whitespaces), !value.isEmpty else { return nil }
        if let seconds = Double(value), seconds >= 0, seconds.isFinite { return seconds }
        for format in ["EEE, dd MMM yyyy HH:mm:ss zzz", "EEEE, dd-MMM-yy HH:mm:ss zzz", "EEE MMM d HH:mm:ss yyyy"] {
            let formatter = DateFormatter()
            formatter.locale = Locale(identifier: "en_US_POSIX")
            formatter.timeZone = TimeZone(identifier: "GMT")
            formatter.dateFormat = format
            if let date = formatter.date(from: value) { return max(0, date.timeIntervalSince(now)) }
        }
        return nil
    }

    /// `2026-11-29T10:00:00.000Z`: UTC with milliseconds, as the SDKs send event timestamps.
    public static func timestamp(_ date: Date) -> String {
        let ms = Int64((date.timeIntervalSince1970 * 1000).rounded(.down))
        let seconds = Double(ms / 1000)
        var c = Calendar(identifier: .gregorian)
        c.timeZone = TimeZone(identifier: "UTC")!
        let d = c.dateComponents([.year, .month, .day, .hour, .minute, .second], from: Date(timeIntervalSince1970: seconds))
        let millis = Int(((ms % 1000) + 1000) % 1000)
        func pad(_ v: Int?, _ n: Int) -> String {
            let s = String(v ?? 0)
            return String(repeating: "0", count: max(0, n - s.count)) + s
        }
        return "\(pad(d.year, 4))-\(pad(d.month, 2))-\(pad(d.day, 2))T\(pad(d.hour, 2)):\(pad(d.minute, 2)):\(pad(d.second, 2)).\(pad(millis, 3))Z"
    }
}
