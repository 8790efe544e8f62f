import Foundation

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
    /// 2 appended `DeviceState.pushTokenUncertain`; 3 appended `DeviceState.deviceEventState` and
    /// `CustomEvent.sessionId`. The conformances of the workflow's types are in `StoredForm+Workflow.swift`.
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
