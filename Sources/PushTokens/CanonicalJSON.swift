/// Writes JSON string literals exactly as the browser's `JSON.stringify` does, so the canonical
/// `pushToken` is byte-for-byte what a web client would have sent: `"` and `\` escaped, control
/// characters as the short escapes or `\u00XX`, everything else (including `/` and non-ASCII) as is.
enum CanonicalJSON {
    static func quoted(_ text: String) -> String {
        var result = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\u{08}": result += "\\b"
            case "\u{0C}": result += "\\f"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            case "\u{00}"..."\u{1F}":
                let hex = HexCoding.encode([UInt8(scalar.value)])
                result += "\\u00" + hex
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result + "\""
    }
}
