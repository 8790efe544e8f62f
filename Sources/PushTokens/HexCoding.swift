/// Hexadecimal digits, both ways. APNs tokens are compared and hashed as lowercase hex, so case
/// differences between clients (Parse Server lowercases, Apple samples print uppercase) vanish.
enum HexCoding {
    private static let digits: [UInt8] = Array("0123456789abcdef".utf8)

    static func nibble(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    static func isHexDigit(_ byte: UInt8) -> Bool { nibble(byte) != nil }

    /// Decodes an even-length run of hex digits; nil when a byte is not a hex digit or the length is odd.
    static func decode<C: Collection<UInt8>>(_ text: C) -> [UInt8]? {
        guard text.count % 2 == 0 else { return nil }
        var result: [UInt8] = []
        result.reserveCapacity(text.count / 2)
        var high: UInt8?
        for byte in text {
            guard let value = nibble(byte) else { return nil }
            if let first = high {
                result.append(first << 4 | value)
                high = nil
            } else {
                high = value
            }
        }
        return result
    }

    static func encode<C: Sequence<UInt8>>(_ bytes: C) -> String {
        var result: [UInt8] = []
        for byte in bytes {
            result.append(digits[Int(byte >> 4)])
            result.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: result, as: UTF8.self)
    }
}
