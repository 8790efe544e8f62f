import Foundation
import Workflow

/// Listing cursors, as the API checks them before asking storage.
public enum ListCursor {
    /// A cursor is the base64url of a device id; anything else was not made by a listing.
    public static func isValid(_ cursor: String) -> Bool {
        guard cursor.count <= 200, cursor.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }),
              let id = Codec.deviceId(fromCursor: cursor) else { return false }
        return !id.isEmpty && id.count <= 128
    }
}

/// How the engine's state and intent payloads are stored: `StoredForm` (binary), sealed.
///
/// Rows written before the binary form hold JSON (it starts with `{`); they are still read, and become
/// binary when next written.
enum Codec {
    static func seal<T: StoredCodable>(_ value: T, _ sealer: Sealer) throws -> Data {
        try sealer.seal(Data(StoredForm.encode(value)))
    }

    static func open<T: StoredCodable & Decodable>(_ type: T.Type, _ data: Data, _ sealer: Sealer) throws -> T {
        try decode(type, sealer.open(data))
    }

    static func decode<T: StoredCodable & Decodable>(_ type: T.Type, _ data: Data) throws -> T {
        if data.first == UInt8(ascii: "{") {
            let d = JSONDecoder()
            d.dateDecodingStrategy = .millisecondsSince1970
            return try d.decode(type, from: data)
        }
        return try StoredForm.decode(type, from: data)
    }

    static func ms(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1000).rounded(.down)) }
    static func date(_ ms: Int64) -> Date { Date(timeIntervalSince1970: Double(ms) / 1000) }

    /// Opaque listing cursors: the last device id of a page, base64url.
    static func cursor(after deviceId: String) -> String {
        Data(deviceId.utf8).base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    static func deviceId(fromCursor cursor: String) -> String? {
        var s = cursor.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while s.count % 4 != 0 { s += "=" }
        return Data(base64Encoded: s).flatMap { String(data: $0, encoding: .utf8) }
    }
}
