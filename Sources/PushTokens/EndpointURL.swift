/// A Web Push endpoint checked and put in canonical form (push-tokens.md, Web Push).
///
/// Only the scheme and host are normalised (lowercased, `:443` dropped); path and query are kept
/// byte for byte, because the push service's token lives there, is case-sensitive, and Edge's
/// percent-escapes must stay as they are. The parser is deliberately narrower than WHATWG URL
/// parsing: anything a browser-issued endpoint never contains (white space, backslashes, raw
/// non-ASCII, percent-encoded host) is refused instead of being repaired.
struct EndpointURL: Sendable, Hashable {
    /// "https://" + host + path-and-query.
    var canonical: String
    /// Lowercase host name.
    var host: String
    /// The path, without the query.
    var path: String

    static let maxLength = 4096

    static func parse(_ text: String) throws(TokenRejection) -> EndpointURL {
        let bytes = Array(text.utf8)
        guard bytes.count <= maxLength else {
            throw TokenRejection(
                TokenRejection.Rule.endpointTooLong,
                "the endpoint is \(bytes.count) bytes, more than the \(maxLength) this service accepts.")
        }
        guard let separator = ByteSearch.firstIndex(of: "://", in: bytes), separator > 0,
              bytes[..<separator].allSatisfy({ $0 | 0x20 >= UInt8(ascii: "a") && $0 | 0x20 <= UInt8(ascii: "z") }) else {
            throw malformed("it does not start with 'https://'")
        }
        let scheme = String(decoding: bytes[..<separator], as: UTF8.self).lowercased()
        guard scheme == "https" else {
            throw TokenRejection(
                TokenRejection.Rule.endpointNotHTTPS,
                "the endpoint uses '\(scheme.prefix(16))://'; Web Push endpoints are always https.")
        }
        if let bad = bytes.first(where: isForbidden) {
            throw TokenRejection(
                TokenRejection.Rule.endpointInvalidCharacters,
                "the endpoint contains \(describe(bad)), which a browser-issued endpoint never has; send it exactly as the browser returned it.")
        }
        if bytes.contains(UInt8(ascii: "#")) {
            throw TokenRejection(TokenRejection.Rule.endpointFragment, "the endpoint has a '#' fragment, which push endpoints never carry.")
        }
        let authorityStart = separator + 3
        let authorityEnd = bytes[authorityStart...].firstIndex { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "?") } ?? bytes.count
        let authority = bytes[authorityStart..<authorityEnd]
        if authority.contains(UInt8(ascii: "@")) {
            throw TokenRejection(
                TokenRejection.Rule.endpointUserinfo,
                "the endpoint has user information ('user@') before the host; push endpoints never carry credentials.")
        }
        if authority.first == UInt8(ascii: "[") {
            throw ipLiteral()
        }
        var hostBytes = authority
        if let colon = authority.firstIndex(of: UInt8(ascii: ":")) {
            hostBytes = authority[..<colon]
            let port = authority[(colon + 1)...]
            guard port.elementsEqual("443".utf8) else {
                throw TokenRejection(
                    TokenRejection.Rule.endpointPortNotAllowed,
                    "the endpoint names port '\(String(decoding: port.prefix(16), as: UTF8.self))'; only the https default 443 (or no port) is allowed.")
            }
        }
        let host = String(decoding: hostBytes, as: UTF8.self).lowercased()
        guard DNSName.isValid(host) else { throw malformed("'\(host.prefix(64))' is not a host name") }
        if isIPv4(host) { throw ipLiteral() }
        let rest = bytes[authorityEnd...]
        let pathEnd = rest.firstIndex(of: UInt8(ascii: "?")) ?? rest.endIndex
        let path = rest[..<pathEnd]
        if path.count <= 1 {
            throw TokenRejection(
                TokenRejection.Rule.endpointEmptyPath,
                "the endpoint has no path; a push endpoint always names the subscription in its path or query, so it was cut short.")
        }
        return EndpointURL(
            canonical: "https://" + host + String(decoding: rest, as: UTF8.self),
            host: host, path: String(decoding: path, as: UTF8.self))
    }

    /// The lowercase host of anything URL-like, for hints; nil when there is none.
    static func roughHost(of text: some StringProtocol) -> String? {
        let bytes = Array(text.utf8.prefix(1024))
        guard let separator = ByteSearch.firstIndex(of: "://", in: bytes) else { return nil }
        let start = separator + 3
        let end = bytes[start...].firstIndex { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "#") || $0 == UInt8(ascii: ":") } ?? bytes.count
        let host = String(decoding: bytes[start..<end], as: UTF8.self).lowercased()
        return host.isEmpty ? nil : host
    }

    private static func malformed(_ detail: String) -> TokenRejection {
        TokenRejection(TokenRejection.Rule.endpointMalformed, "the endpoint is not a valid https URL: \(detail).")
    }

    private static func ipLiteral() -> TokenRejection {
        TokenRejection(
            TokenRejection.Rule.endpointIPLiteral,
            "the endpoint host is an IP address; push services are reached by name, and an address could point the service at internal hosts.")
    }

    /// WHATWG reads a host whose last label is numeric (decimal or 0x-hex) as IPv4, e.g. "127.1".
    private static func isIPv4(_ host: String) -> Bool {
        guard let last = host.utf8.split(separator: UInt8(ascii: ".")).last else { return false }
        if last.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) { return true }
        return last.count >= 2 && last.first == UInt8(ascii: "0") && last.dropFirst().first == UInt8(ascii: "x")
            && last.dropFirst(2).allSatisfy(HexCoding.isHexDigit)
    }

    private static func isForbidden(_ byte: UInt8) -> Bool {
        switch byte {
        case 0...0x20, 0x7F...0xFF: true
        case UInt8(ascii: "\""), UInt8(ascii: "<"), UInt8(ascii: ">"), UInt8(ascii: "\\"), UInt8(ascii: "^"),
             UInt8(ascii: "`"), UInt8(ascii: "{"), UInt8(ascii: "|"), UInt8(ascii: "}"): true
        default: false
        }
    }

    private static func describe(_ byte: UInt8) -> String {
        if byte == 0x20 { return "a space" }
        if byte < 0x20 || byte == 0x7F { return "a control character" }
        if byte >= 0x80 { return "non-ASCII characters (percent-encode them)" }
        return "'\(Character(Unicode.Scalar(byte)))'"
    }
}
