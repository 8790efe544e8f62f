import Foundation
import Storage
import Workflow

extension DeviceStatus {
    /// The status document of a device as a store read it; `deduplicated` only in answers to writes.
    public init(_ device: DeviceSnapshot, deduplicated: Bool? = nil) {
        self.init(registration: device.registration, state: device.state, deduplicated: deduplicated)
    }
}

/// The status document as JSON bytes, written directly.
///
/// Every API write and status read answers with a status; through `JSONEncoder` that was a tenth of the CPU of
/// a deduplicated write. The bytes are exactly what `JSONEncoder` with `[.sortedKeys, .withoutEscapingSlashes]`
/// makes of `DeviceStatus` (keys sorted, nil optionals as `null` or left out as `encode(to:)` says); a test
/// compares the two on random statuses.
extension DeviceStatus {
    public func jsonBytes() -> [UInt8] {
        var out = JSONOut()
        out.bytes.reserveCapacity(640)
        write(to: &out)
        return out.bytes
    }

    func write(to o: inout JSONOut) {
        o.raw("{\"appCode\":")
        o.string(appCode)
        o.raw(",\"clientId\":")
        o.string(clientId)
        o.raw(",\"contact\":{")
        if let fieldId = contact.fieldId {
            o.raw("\"fieldId\":")
            o.int(fieldId)
            o.raw(",")
        }
        o.raw("\"kind\":")
        o.string(contact.kind)
        o.raw("}")
        if let deduplicated {
            o.raw(deduplicated ? ",\"deduplicated\":true" : ",\"deduplicated\":false")
        }
        o.raw(",\"deviceId\":")
        o.string(deviceId)
        o.raw(",\"lastError\":")
        if let e = lastError {
            o.raw("{\"at\":")
            o.string(e.at)
            o.raw(",\"attempts\":")
            o.int(e.attempts)
            o.raw(",\"message\":")
            o.string(e.message)
            o.raw(",\"nextAttemptAt\":")
            o.optionalString(e.nextAttemptAt)
            o.raw(",\"status\":")
            if let status = e.status { o.int(status) } else { o.raw("null") }
            o.raw(",\"step\":")
            o.string(e.step)
            o.raw("}")
        } else {
            o.raw("null")
        }
        o.raw(",\"lastSeenAt\":")
        o.string(lastSeenAt)
        o.raw(",\"pending\":")
        o.int(pending)
        o.raw(",\"platform\":")
        o.string(platform)
        o.raw(",\"provider\":")
        o.optionalString(provider)
        o.raw(",\"state\":")
        o.string(state)
        o.raw(",\"steps\":{\"client\":")
        step(steps.client, to: &o)
        o.raw(",\"contact\":")
        step(steps.contact, to: &o)
        o.raw(",\"pushToken\":")
        step(steps.pushToken, to: &o)
        o.raw("},\"tokenHash\":")
        o.optionalString(tokenHash)
        o.raw(",\"updatedAt\":")
        o.string(updatedAt)
        if let waitingFor {
            o.raw(",\"waitingFor\":")
            o.string(waitingFor)
        }
        o.raw("}")
    }

    private func step(_ s: Step, to o: inout JSONOut) {
        o.raw("{")
        if let at = s.at {
            o.raw("\"at\":")
            o.string(at)
            o.raw(",")
        }
        o.raw(s.done ? "\"done\":true" : "\"done\":false")
        if let hash = s.tokenHash {
            o.raw(",\"tokenHash\":")
            o.string(hash)
        }
        o.raw("}")
    }
}

/// JSON text the way `JSONEncoder` writes it: `"`, `\` and control characters escaped (`\b \f \n \r \t`
/// by name, the rest as `\u00xx`), `/` and everything else as is.
struct JSONOut {
    var bytes: [UInt8] = []

    mutating func raw(_ s: StaticString) {
        bytes.append(contentsOf: UnsafeBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount))
    }

    mutating func int(_ v: Int) {
        var s = String(v)
        s.withUTF8 { bytes.append(contentsOf: $0) }
    }

    mutating func optionalString(_ s: String?) {
        if let s { string(s) } else { raw("null") }
    }

    mutating func string(_ s: String) {
        var s = s
        bytes.append(UInt8(ascii: "\""))
        s.withUTF8 { utf8 in
            var start = 0
            for (i, c) in utf8.enumerated() where c < 0x20 || c == UInt8(ascii: "\"") || c == UInt8(ascii: "\\") {
                bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[start..<i]))
                start = i + 1
                bytes.append(UInt8(ascii: "\\"))
                switch c {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"): bytes.append(c)
                case 0x08: bytes.append(UInt8(ascii: "b"))
                case 0x0C: bytes.append(UInt8(ascii: "f"))
                case 0x0A: bytes.append(UInt8(ascii: "n"))
                case 0x0D: bytes.append(UInt8(ascii: "r"))
                case 0x09: bytes.append(UInt8(ascii: "t"))
                default:
                    let hex: [UInt8] = Array("0123456789abcdef".utf8)
                    bytes.append(contentsOf: [UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"), hex[Int(c >> 4)], hex[Int(c & 0xF)]])
                }
            }
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[start...]))
        }
        bytes.append(UInt8(ascii: "\""))
    }
}
