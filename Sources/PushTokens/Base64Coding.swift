/// Base64 that accepts what clients really send and writes what browsers write.
///
/// Reading accepts the standard (`+/`) or the URL-safe (`-_`) alphabet, padded or not, but not both
/// alphabets in one string, and not non-zero trailing bits: such strings are not produced by any
/// encoder, and accepting them would let two different strings stand for the same key or token.
/// Writing is always unpadded base64url, the form `PushSubscription.toJSON()` gives.
enum Base64Coding {
    private static let urlAlphabet: [UInt8] = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    private static func sextet(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): byte - UInt8(ascii: "A")
        case UInt8(ascii: "a")...UInt8(ascii: "z"): byte - UInt8(ascii: "a") + 26
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0") + 52
        case UInt8(ascii: "+"), UInt8(ascii: "-"): 62
        case UInt8(ascii: "/"), UInt8(ascii: "_"): 63
        default: nil
        }
    }

    static func isAlphabetByte(_ byte: UInt8) -> Bool { sextet(byte) != nil || byte == UInt8(ascii: "=") }

    /// Decodes base64 or base64url, padded or unpadded; nil when the text is not one of those.
    static func decode(_ text: some Collection<UInt8>) -> [UInt8]? {
        var body = Array(text)
        var padding = 0
        while body.last == UInt8(ascii: "=") {
            body.removeLast()
            padding += 1
        }
        let remainder = body.count % 4
        guard !body.isEmpty, remainder != 1 else { return nil }
        if padding > 0 {
            guard (body.count + padding) % 4 == 0, padding <= 2 else { return nil }
        }
        var sawStandard = false
        var sawURLSafe = false
        var result: [UInt8] = []
        result.reserveCapacity(body.count * 3 / 4)
        var accumulator: UInt32 = 0
        var bits = 0
        for byte in body {
            switch byte {
            case UInt8(ascii: "+"), UInt8(ascii: "/"): sawStandard = true
            case UInt8(ascii: "-"), UInt8(ascii: "_"): sawURLSafe = true
            default: break
            }
            guard let value = sextet(byte) else { return nil }
            accumulator = accumulator << 6 | UInt32(value)
            bits += 6
            if bits >= 8 {
                bits -= 8
                result.append(UInt8(truncatingIfNeeded: accumulator >> UInt32(bits)))
                accumulator &= (1 << UInt32(bits)) - 1
            }
        }
        guard !(sawStandard && sawURLSafe), accumulator == 0 else { return nil }
        return result
    }

    /// Unpadded base64url.
    static func encodeURLUnpadded(_ bytes: [UInt8]) -> String {
        var result: [UInt8] = []
        result.reserveCapacity((bytes.count * 4 + 2) / 3)
        var index = 0
        while index + 3 <= bytes.count {
            let chunk = UInt32(bytes[index]) << 16 | UInt32(bytes[index + 1]) << 8 | UInt32(bytes[index + 2])
            for shift in [18, 12, 6, 0] { result.append(urlAlphabet[Int(chunk >> UInt32(shift) & 0x3F)]) }
            index += 3
        }
        let rest = bytes.count - index
        if rest == 1 {
            let chunk = UInt32(bytes[index]) << 16
            for shift in [18, 12] { result.append(urlAlphabet[Int(chunk >> UInt32(shift) & 0x3F)]) }
        } else if rest == 2 {
            let chunk = UInt32(bytes[index]) << 16 | UInt32(bytes[index + 1]) << 8
            for shift in [18, 12, 6] { result.append(urlAlphabet[Int(chunk >> UInt32(shift) & 0x3F)]) }
        }
        return String(decoding: result, as: UTF8.self)
    }
}
