import Foundation
import MobileEngage

/// The compact binary form in which storage keeps the engine's state and intent payloads.
///
/// Every write, engine step and deduplicated request encodes or decodes a `DeviceState`; with
/// `JSONEncoder`/`JSONDecoder` that was the largest single cost of an API write after HTTP itself (see
/// BENCHMARKS.md). This form is the fields in declaration order: integers as LEB128 varints (zigzag when
/// signed), strings as a length and UTF-8, optionals as a 0/1 byte, dates as the bit pattern of their
/// `timeIntervalSince1970` (exact), enums as a case byte. A field is only ever appended at the end of a type,
/// after a new `StoredForm.version`; readers reject what they do not know instead of guessing. Values written in
/// an earlier version still read: a field appended since reads as its default.
public enum StoredForm {
    /// The first byte of every stored value in this form (JSON, the earlier form, starts with `{`).
    /// 2 appended `DeviceState.pushTokenUncertain`.
    public static let version: UInt8 = 3

    public static func encode<T: StoredCodable>(_ value: T) -> [UInt8] {
        var w = StoredWriter()
        w.bytes.reserveCapacity(512)
        w.bytes.append(version)
        value.write(to: &w)
        return w.bytes
    }

    public static func decode<T: StoredCodable>(_ type: T.Type, from bytes: some Collection<UInt8>) throws -> T {
        try bytes.withContiguousStorageIfAvailable { try decode(type, buffer: UnsafeRawBufferPointer($0)) }
            ?? Array(bytes).withUnsafeBytes { try decode(type, buffer: $0) }
    }

    static func decode<T: StoredCodable>(_ type: T.Type, buffer: UnsafeRawBufferPointer) throws -> T {
        var r = StoredReader(buffer)
        let written = try r.byte()
        guard (1...version).contains(written) else { throw StoredFormError.malformed("unknown stored form version") }
        r.version = written
        let value = try T(from: &r)
        guard r.atEnd else { throw StoredFormError.malformed("trailing bytes") }
        return value
    }
}

public enum StoredFormError: Error, CustomStringConvertible {
    case malformed(String)
    public var description: String {
        switch self {
        case .malformed(let m): "stored value: \(m)"
        }
    }
}

public struct StoredWriter {
    public var bytes: [UInt8] = []

    mutating func varint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    mutating func int(_ value: Int64) { varint(UInt64(bitPattern: (value << 1) ^ (value >> 63))) }
}

public struct StoredReader {
    private let buffer: UnsafeRawBufferPointer
    private var index = 0
    /// The `StoredForm.version` the value was written in: a field appended after it is not there to read.
    var version = StoredForm.version

    init(_ buffer: UnsafeRawBufferPointer) { self.buffer = buffer }

    var atEnd: Bool { index == buffer.count }

    mutating func byte() throws -> UInt8 {
        guard index < buffer.count else { throw StoredFormError.malformed("truncated") }
        defer { index += 1 }
        return buffer[index]
    }

    mutating func varint() throws -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let b = try byte()
            guard shift < 64 else { throw StoredFormError.malformed("varint too long") }
            result |= UInt64(b & 0x7F) << shift
            if b < 0x80 { return result }
            shift += 7
        }
    }

    mutating func int() throws -> Int64 {
        let v = try varint()
        return Int64(bitPattern: (v >> 1) ^ (0 &- (v & 1)))
    }

    mutating func string() throws -> String {
        let count = try varint()
        guard count <= UInt64(buffer.count - index) else { throw StoredFormError.malformed("truncated string") }
        let start = index
        index += Int(count)
        return String(decoding: UnsafeRawBufferPointer(rebasing: buffer[start..<index]), as: UTF8.self)
    }
}

/// A type storage keeps in `StoredForm`.
public protocol StoredCodable {
    func write(to w: inout StoredWriter)
    init(from r: inout StoredReader) throws
}

// MARK: Building blocks

extension String: StoredCodable {
    public func write(to w: inout StoredWriter) {
        var s = self
        s.withUTF8 { utf8 in
            w.varint(UInt64(utf8.count))
            w.bytes.append(contentsOf: utf8)
        }
    }
    public init(from r: inout StoredReader) throws { self = try r.string() }
}

extension Int: StoredCodable {
    public func write(to w: inout StoredWriter) { w.int(Int64(self)) }
    public init(from r: inout StoredReader) throws {
        let v = try r.int()
        guard let i = Int(exactly: v) else { throw StoredFormError.malformed("integer out of range") }
        self = i
    }
}

extension Int64: StoredCodable {
    public func write(to w: inout StoredWriter) { w.int(self) }
    public init(from r: inout StoredReader) throws { self = try r.int() }
}

extension Bool: StoredCodable {
    public func write(to w: inout StoredWriter) { w.bytes.append(self ? 1 : 0) }
    public init(from r: inout StoredReader) throws {
        switch try r.byte() {
        case 0: self = false
        case 1: self = true
        default: throw StoredFormError.malformed("bool")
        }
    }
}

extension Double: StoredCodable {
    public func write(to w: inout StoredWriter) {
        withUnsafeBytes(of: bitPattern.littleEndian) { w.bytes.append(contentsOf: $0) }
    }
    public init(from r: inout StoredReader) throws {
        var bits: UInt64 = 0
        for shift in stride(from: 0, to: 64, by: 8) { bits |= UInt64(try r.byte()) << UInt64(shift) }
        self = Double(bitPattern: bits)
    }
}

extension Date: StoredCodable {
    public func write(to w: inout StoredWriter) { timeIntervalSince1970.write(to: &w) }
    public init(from r: inout StoredReader) throws { self = Date(timeIntervalSince1970: try Double(from: &r)) }
}

extension Optional: StoredCodable where Wrapped: StoredCodable {
    public func write(to w: inout StoredWriter) {
        switch self {
        case nil: w.bytes.append(0)
        case let value?:
            w.bytes.append(1)
            value.write(to: &w)
        }
    }
    public init(from r: inout StoredReader) throws {
        switch try r.byte() {
        case 0: self = nil
        case 1: self = try Wrapped(from: &r)
        default: throw StoredFormError.malformed("optional")
        }
    }
}

extension Array: StoredCodable where Element: StoredCodable {
    public func write(to w: inout StoredWriter) {
        w.varint(UInt64(count))
        for e in self { e.write(to: &w) }
    }
    public init(from r: inout StoredReader) throws {
        let n = try r.varint()
        self = []
        for _ in 0..<n { append(try Element(from: &r)) }
    }
}

extension Dictionary: StoredCodable where Key == String, Value: StoredCodable {
    /// Keys in sorted order, so that equal dictionaries are equal bytes.
    public func write(to w: inout StoredWriter) {
        w.varint(UInt64(count))
        for key in keys.sorted() {
            key.write(to: &w)
            self[key]!.write(to: &w)
        }
    }
    public init(from r: inout StoredReader) throws {
        let n = try r.varint()
        self = [:]
        for _ in 0..<n {
            let key = try r.string()
            self[key] = try Value(from: &r)
        }
    }
}

// MARK: The model

extension TokenRef: StoredCodable {
    public func write(to w: inout StoredWriter) {
        provider.write(to: &w)
        platform.write(to: &w)
        pushToken.write(to: &w)
        tokenHash.write(to: &w)
    }
    public init(from r: inout StoredReader) throws {
        self.init(provider: try r.string(), platform: try r.string(), pushToken: try r.string(), tokenHash: try r.string())
    }
}

extension ContactRequest: StoredCodable {
    public func write(to w: inout StoredWriter) {
        switch self {
        case .anonymous: w.bytes.append(0)
        case .identified(let fieldId, let value):
            w.bytes.append(1)
            fieldId.write(to: &w)
            value.write(to: &w)
        case .openId(let fieldId, let token):
            w.bytes.append(2)
            fieldId.write(to: &w)
            token.write(to: &w)
        }
    }
    public init(from r: inout StoredReader) throws {
        switch try r.byte() {
        case 0: self = .anonymous
        case 1: self = .identified(fieldId: try Int(from: &r), value: try r.string())
        case 2: self = .openId(fieldId: try Int(from: &r), token: try r.string())
        default: throw StoredFormError.malformed("contact")
        }
    }
}

extension MEJSON: StoredCodable {
    public func write(to w: inout StoredWriter) {
        switch self {
        case .string(let s):
            w.bytes.append(0)
            s.write(to: &w)
        case .bool(let b):
            w.bytes.append(1)
            b.write(to: &w)
        case .number(let n):
            w.bytes.append(2)
            n.write(to: &w)
        case .array(let a):
            w.bytes.append(3)
            a.write(to: &w)
        case .object(let o):
            w.bytes.append(4)
            o.write(to: &w)
        case .null:
            w.bytes.append(5)
        }
    }
    public init(from r: inout StoredReader) throws {
        switch try r.byte() {
        case 0: self = .string(try r.string())
        case 1: self = .bool(try Bool(from: &r))
        case 2: self = .number(try Double(from: &r))
        case 3: self = .array(try [MEJSON](from: &r))
        case 4: self = .object(try [String: MEJSON](from: &r))
        case 5: self = .null
        default: throw StoredFormError.malformed("push setting")
        }
    }
}

extension DeviceInfo: StoredCodable {
    public func write(to w: inout StoredWriter) {
        applicationVersion.write(to: &w)
        deviceModel.write(to: &w)
        osVersion.write(to: &w)
        language.write(to: &w)
        timezone.write(to: &w)
        pushSettings.write(to: &w)
    }
    public init(from r: inout StoredReader) throws {
        self.init(
            applicationVersion: try String?(from: &r), deviceModel: try String?(from: &r), osVersion: try String?(from: &r),
            language: try String?(from: &r), timezone: try String?(from: &r), pushSettings: try [String: MEJSON]?(from: &r))
    }
}

extension StepTimes: StoredCodable {
    public func write(to w: inout StoredWriter) {
        clientAt.write(to: &w)
        contactAt.write(to: &w)
        pushTokenAt.write(to: &w)
    }
    public init(from r: inout StoredReader) throws {
        self.init(clientAt: try Date?(from: &r), contactAt: try Date?(from: &r), pushTokenAt: try Date?(from: &r))
    }
}

extension LastError: StoredCodable {
    public func write(to w: inout StoredWriter) {
        step.write(to: &w)
        status.write(to: &w)
        message.write(to: &w)
        attempts.write(to: &w)
        at.write(to: &w)
        nextAttemptAt.write(to: &w)
    }
    public init(from r: inout StoredReader) throws {
        self.init(
            step: try r.string(), status: try Int?(from: &r), message: try r.string(), attempts: try Int(from: &r), at: try Date(from: &r),
            nextAttemptAt: try Date?(from: &r))
    }
}

extension DeviceState: StoredCodable {
    public func write(to w: inout StoredWriter) {
        clientId.write(to: &w)
        clientState.write(to: &w)
        contactToken.write(to: &w)
        refreshToken.write(to: &w)
        linkedContact.write(to: &w)
        deviceInfoHashSent.write(to: &w)
        pushTokenSent.write(to: &w)
        resendPushToken.write(to: &w)
        lastRequestOrder.write(to: &w)
        platform.write(to: &w)
        info.write(to: &w)
        wantedContact.write(to: &w)
        wantedToken.write(to: &w)
        attempts.write(to: &w)
        refreshCycles.write(to: &w)
        needsRefresh.write(to: &w)
        relinked.write(to: &w)
        failed.write(to: &w)
        waitingFor.write(to: &w)
        lastError.write(to: &w)
        steps.write(to: &w)
        pushTokenUncertain.write(to: &w)  // version 2
        deviceEventState.write(to: &w)  // version 3
    }
    public init(from r: inout StoredReader) throws {
        self.init(clientId: try r.string(), platform: "")
        clientState = try String?(from: &r)
        contactToken = try String?(from: &r)
        refreshToken = try String?(from: &r)
        linkedContact = try ContactRequest?(from: &r)
        deviceInfoHashSent = try String?(from: &r)
        pushTokenSent = try TokenRef?(from: &r)
        resendPushToken = try Bool(from: &r)
        lastRequestOrder = try Int64(from: &r)
        platform = try r.string()
        info = try DeviceInfo(from: &r)
        wantedContact = try ContactRequest?(from: &r)
        wantedToken = try TokenRef?(from: &r)
        attempts = try Int(from: &r)
        refreshCycles = try Int(from: &r)
        needsRefresh = try Bool(from: &r)
        relinked = try Bool(from: &r)
        failed = try Bool(from: &r)
        waitingFor = try String?(from: &r)
        lastError = try LastError?(from: &r)
        steps = try StepTimes(from: &r)
        pushTokenUncertain = r.version >= 2 ? try TokenRef?(from: &r) : nil
        deviceEventState = r.version >= 3 ? try MEJSON?(from: &r) : nil
    }
}

extension CustomEvent: StoredCodable {
    public func write(to w: inout StoredWriter) {
        name.write(to: &w)
        timestamp.write(to: &w)
        attributes.write(to: &w)
        sessionId.write(to: &w)  // version 3
    }
    public init(from r: inout StoredReader) throws {
        self.init(
            name: try r.string(), timestamp: try r.string(), attributes: try [String: String]?(from: &r),
            sessionId: r.version >= 3 ? try String?(from: &r) : nil)
    }
}

extension StartIntent: StoredCodable {
    public func write(to w: inout StoredWriter) {
        provider.write(to: &w)
        platform.write(to: &w)
        token.write(to: &w)
        info.write(to: &w)
        contact.write(to: &w)
        clientId.write(to: &w)
    }
    public init(from r: inout StoredReader) throws {
        self.init(
            provider: try r.string(), platform: try r.string(), token: try TokenRef?(from: &r), info: try DeviceInfo(from: &r),
            contact: try ContactRequest?(from: &r), clientId: try String?(from: &r))
    }
}

extension IntentPayload: StoredCodable {
    public func write(to w: inout StoredWriter) {
        switch self {
        case .start(let s):
            w.bytes.append(0)
            s.write(to: &w)
        case .setToken(let t):
            w.bytes.append(1)
            t.write(to: &w)
        case .removeToken:
            w.bytes.append(2)
        case .login(let fieldId, let value):
            w.bytes.append(3)
            fieldId.write(to: &w)
            value.write(to: &w)
        case .logout:
            w.bytes.append(4)
        case .events(let events):
            w.bytes.append(5)
            events.write(to: &w)
        case .release(let tokenHash):
            w.bytes.append(6)
            tokenHash.write(to: &w)
        case .forget:
            w.bytes.append(7)
        case .releaseAll(let tokenHash):
            w.bytes.append(8)
            tokenHash.write(to: &w)
        case .openIdLogin(let fieldId, let token):
            w.bytes.append(9)
            fieldId.write(to: &w)
            token.write(to: &w)
        }
    }
    public init(from r: inout StoredReader) throws {
        switch try r.byte() {
        case 0: self = .start(try StartIntent(from: &r))
        case 1: self = .setToken(try TokenRef(from: &r))
        case 2: self = .removeToken
        case 3: self = .login(fieldId: try Int(from: &r), value: try r.string())
        case 4: self = .logout
        case 5: self = .events(try [CustomEvent](from: &r))
        case 6: self = .release(tokenHash: try r.string())
        case 7: self = .forget
        case 8: self = .releaseAll(tokenHash: try r.string())
        case 9: self = .openIdLogin(fieldId: try Int(from: &r), token: try r.string())
        default: throw StoredFormError.malformed("intent payload")
        }
    }
}
