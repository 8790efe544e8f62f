/// Strict parsing of ME request bodies.
///
/// The sandbox exists to catch bridge bugs before production does, so it refuses anything the SDKs would not
/// send: wrong types, empty strings, malformed timestamps. Each rejection names the field.
enum BodyValidation {
    static let platforms: Set<String> = ["android", "android-huawei", "ios", "chrome", "firefox", "safari", "edge"]

    /// Parses `bytes` as a JSON object. An empty body is `nil` (callers decide whether that is allowed).
    static func object(_ bytes: [UInt8]) throws(MEFailure) -> [String: SandboxJSON]? {
        if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) { return nil }
        guard let json = SandboxJSON.parse(bytes) else {
            throw .badRequest("request body is not valid JSON")
        }
        guard let object = json.objectValue else {
            throw .badRequest("request body must be a JSON object")
        }
        return object
    }

    /// Like `object`, but an empty body is an error.
    static func requiredObject(_ bytes: [UInt8]) throws(MEFailure) -> [String: SandboxJSON] {
        guard let object = try object(bytes) else { throw .badRequest("request body is required") }
        return object
    }

    static func nonEmptyString(_ object: [String: SandboxJSON], _ key: String, path: String? = nil) throws(MEFailure) -> String {
        let field = path ?? key
        guard let value = object[key] else { throw .invalidField(field, "required") }
        guard let string = value.stringValue else { throw .invalidField(field, "must be a string") }
        guard !string.isEmpty else { throw .invalidField(field, "must not be empty") }
        return string
    }

    /// The device info body of `POST /client`; returns the platform.
    static func deviceInfo(_ object: [String: SandboxJSON]) throws(MEFailure) -> String {
        let platform = try nonEmptyString(object, "platform")
        guard platforms.contains(platform) else {
            throw .invalidField("platform", "must be one of \(platforms.sorted().joined(separator: ", "))")
        }
        for key in ["applicationVersion", "deviceModel", "osVersion", "sdkVersion", "language"] {
            _ = try nonEmptyString(object, key)
        }
        let timezone = try nonEmptyString(object, "timezone")
        guard isUTCOffset(timezone) else {
            throw .invalidField("timezone", "must be a UTC offset such as +0100, or the web SDK's +5.530 for +05:30")
        }
        if let settings = object["pushSettings"], settings.objectValue == nil {
            throw .invalidField("pushSettings", "must be an object when present")
        }
        return platform
    }

    /// A UTC offset in the forms clients send: `+HHMM` / `-HHMM` (the mobile SDKs), and the web SDK's form, which
    /// writes the hours as a number and the minutes after them, so a half-hour zone reads `+5.530` (+05:30), Nepal
    /// `+5.7545` (+05:45) and Chatham `+12.7545`: a sign, hours (0 to 14) with the fraction of an hour, then that
    /// fraction again as two digits of minutes (.5 and 30, .75 and 45, .25 and 15). What production does with other
    /// forms is not known; the sandbox refuses them, naming the field.
    static func isUTCOffset(_ value: String) -> Bool {
        let bytes = Array(value.utf8)
        guard bytes.count >= 5, bytes[0] == UInt8(ascii: "+") || bytes[0] == UInt8(ascii: "-") else { return false }
        let rest = Array(bytes[1...])
        if rest.count == 4, rest.allSatisfy(isDigit) { return true }
        guard let dot = rest.firstIndex(of: UInt8(ascii: ".")), (1...2).contains(dot) else { return false }
        let hours = rest[..<dot], tail = rest[(dot + 1)...]
        guard hours.allSatisfy(isDigit), tail.allSatisfy(isDigit), (3...4).contains(tail.count),
              let h = Int(String(decoding: hours, as: UTF8.self)), h <= 14 else { return false }
        let fraction = String(decoding: tail.dropLast(2), as: UTF8.self)
        let minutes = Int(String(decoding: tail.suffix(2), as: UTF8.self)) ?? -1
        return ["5": 30, "75": 45, "25": 15][fraction] == minutes
    }

    /// UTC ISO-8601 with exactly three fraction digits: `2026-11-29T10:00:00.000Z`, with plausible ranges.
    static func isMillisecondTimestamp(_ value: String) -> Bool {
        let b = Array(value.utf8)
        guard b.count == 24 else { return false }
        let separators: [Int: Character] = [4: "-", 7: "-", 10: "T", 13: ":", 16: ":", 19: ".", 23: "Z"]
        for index in 0..<24 {
            if let separator = separators[index] {
                guard b[index] == separator.asciiValue else { return false }
            } else if !isDigit(b[index]) {
                return false
            }
        }
        func number(_ range: Range<Int>) -> Int { b[range].reduce(0) { $0 * 10 + Int($1 - 48) } }
        return (1...12).contains(number(5..<7)) && (1...31).contains(number(8..<10))
            && number(11..<13) < 24 && number(14..<16) < 60 && number(17..<19) < 61
    }

    /// The body of an identified `POST /client/contact`.
    static func identifiedContact(_ object: [String: SandboxJSON]) throws(MEFailure) -> SandboxContact {
        guard let rawFieldId = object["contactFieldId"] else { throw .invalidField("contactFieldId", "required") }
        guard let fieldId = rawFieldId.intValue else { throw .invalidField("contactFieldId", "must be an integer") }
        if object["contactFieldValue"] != nil {
            let value = try nonEmptyString(object, "contactFieldValue")
            return SandboxContact(kind: .identified, fieldId: fieldId, fieldValue: value)
        }
        if object["openIdToken"] != nil {
            _ = try nonEmptyString(object, "openIdToken")
            return SandboxContact(kind: .identified, fieldId: fieldId, fieldValue: nil)
        }
        throw .invalidField("contactFieldValue", "required (or openIdToken)")
    }

    /// The events envelope of `POST /client/events`.
    static func events(_ object: [String: SandboxJSON]) throws(MEFailure) -> [SandboxEvent] {
        guard let rawEvents = object["events"] else { throw .invalidField("events", "required") }
        guard let items = rawEvents.arrayValue else { throw .invalidField("events", "must be an array") }
        for key in ["clicks", "viewedMessages"] {
            if let value = object[key], value.arrayValue == nil { throw .invalidField(key, "must be an array when present") }
        }
        var events: [SandboxEvent] = []
        for (index, item) in items.enumerated() {
            let path = "events[\(index)]"
            guard let event = item.objectValue else { throw .invalidField(path, "must be an object") }
            let type = try nonEmptyString(event, "type", path: path + ".type")
            guard type == "internal" || type == "custom" else { throw .invalidField(path + ".type", "must be internal or custom") }
            let name = try nonEmptyString(event, "name", path: path + ".name")
            let timestamp = try nonEmptyString(event, "timestamp", path: path + ".timestamp")
            guard isMillisecondTimestamp(timestamp) else {
                throw .invalidField(path + ".timestamp", "must be UTC ISO-8601 with milliseconds, e.g. 2026-11-29T10:00:00.000Z")
            }
            var attributes: [String: String]?
            if let rawAttributes = event["attributes"] {
                guard let map = rawAttributes.objectValue else { throw .invalidField(path + ".attributes", "must be an object") }
                // The mobile SDKs send strings; a web page's caller passes numbers and booleans through the web SDK
                // as they are. Production's answer to those is not known: the sandbox takes them, kept as their JSON
                // text, and refuses nested values and null.
                var strings: [String: String] = [:]
                for (key, value) in map {
                    switch value {
                    case .string(let string): strings[key] = string
                    case .int(let number): strings[key] = String(number)
                    case .double(let number): strings[key] = String(number)
                    case .bool(let flag): strings[key] = String(flag)
                    case .null, .array, .object:
                        throw .invalidField(path + ".attributes." + key, "must be a string, a number or a boolean")
                    }
                }
                attributes = strings
            }
            var sessionId: String?
            if event["sessionId"] != nil {
                sessionId = try nonEmptyString(event, "sessionId", path: path + ".sessionId")
            }
            events.append(SandboxEvent(type: type, name: name, timestamp: timestamp, attributes: attributes, sessionId: sessionId))
        }
        return events
    }

    private static func isDigit(_ byte: UInt8) -> Bool { byte >= 48 && byte <= 57 }
}
