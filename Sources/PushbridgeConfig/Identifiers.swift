/// The identifiers the configuration and the API share (app codes, device ids, client ids).
public enum Identifiers {
    /// 1 to `maxLength` characters of A-Z, a-z, 0-9 and the ASCII characters in `punctuation`.
    public static func isIdentifier(_ text: String, maxLength: Int, punctuation: StaticString = ".:_-") -> Bool {
        let utf8 = text.utf8
        guard !utf8.isEmpty, utf8.count <= maxLength else { return false }
        // `withUTF8Buffer`, not `utf8Start`: a one-character literal may be stored as a scalar, without a pointer.
        return punctuation.withUTF8Buffer { allowed in
            utf8.allSatisfy { byte in
                switch byte {
                case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                    return true
                default:
                    return allowed.contains(byte)
                }
            }
        }
    }
}
