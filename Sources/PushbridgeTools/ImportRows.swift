import Foundation

/// One row of an import file: a token a customer already has (from SNS, Firebase, a home-grown table).
public struct ImportRow: Sendable, Hashable {
    public var line: Int
    public var deviceId: String
    public var provider: String
    /// The token as given: a string, or a web push subscription as JSON text.
    public var token: String
    public var contactValue: String?
}

/// A line of the file that could not be read as a row.
public struct ImportRowError: Error, Sendable, Hashable {
    public var line: Int
    public var reason: String
}

/// Reads CSV (header `deviceId,provider,token[,contactValue]`, RFC 4180 quoting) or JSON lines
/// (`{"deviceId", "provider", "token", "contactValue"?}`; `token` may be a subscription object).
public enum ImportFile {
    public enum Format: String, Sendable { case csv, jsonl }

    public static func format(of path: String) -> Format {
        path.hasSuffix(".jsonl") || path.hasSuffix(".ndjson") || path.hasSuffix(".json") ? .jsonl : .csv
    }

    public static func parse(_ text: String, format: Format) -> [Result<ImportRow, ImportRowError>] {
        switch format {
        case .jsonl: return parseJSONLines(text)
        case .csv: return parseCSV(text)
        }
    }

    static func parseJSONLines(_ text: String) -> [Result<ImportRow, ImportRowError>] {
        var out: [Result<ImportRow, ImportRowError>] = []
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty { continue }
            guard let object = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] else {
                out.append(.failure(ImportRowError(line: i + 1, reason: "not a JSON object")))
                continue
            }
            guard let deviceId = object["deviceId"] as? String, let provider = object["provider"] as? String else {
                out.append(.failure(ImportRowError(line: i + 1, reason: "deviceId and provider must be strings")))
                continue
            }
            let token: String
            if let s = object["token"] as? String {
                token = s
            } else if let o = object["token"] as? [String: Any], let data = try? JSONSerialization.data(withJSONObject: o) {
                token = String(decoding: data, as: UTF8.self)
            } else {
                out.append(.failure(ImportRowError(line: i + 1, reason: "token must be a string or a subscription object")))
                continue
            }
            out.append(.success(ImportRow(line: i + 1, deviceId: deviceId, provider: provider, token: token, contactValue: object["contactValue"] as? String)))
        }
        return out
    }

    static func parseCSV(_ text: String) -> [Result<ImportRow, ImportRowError>] {
        let records = csvRecords(text)
        guard let header = records.first else { return [] }
        let names = header.fields.map { $0.trimmingCharacters(in: .whitespaces) }
        guard let d = names.firstIndex(of: "deviceId"), let p = names.firstIndex(of: "provider"), let t = names.firstIndex(of: "token") else {
            return [.failure(ImportRowError(line: 1, reason: "the header must name deviceId, provider and token"))]
        }
        let c = names.firstIndex(of: "contactValue")
        return records.dropFirst().compactMap { record in
            if record.fields.count == 1 && record.fields[0].isEmpty { return nil }
            guard record.fields.count == names.count else {
                return .failure(ImportRowError(line: record.line, reason: "expected \(names.count) fields, found \(record.fields.count)"))
            }
            let contact = c.map { record.fields[$0] }.flatMap { $0.isEmpty ? nil : $0 }
            return .success(ImportRow(line: record.line, deviceId: record.fields[d], provider: record.fields[p], token: record.fields[t], contactValue: contact))
        }
    }

    /// RFC 4180: fields separated by commas, optionally quoted with `"`, `""` for a quote, newlines in quotes.
    public static func csvRecords(_ text: String) -> [(line: Int, fields: [String])] {
        var records: [(Int, [String])] = []
        var fields: [String] = []
        var field = ""
        var quoted = false
        var line = 1
        var recordLine = 1
        var chars = Array(text.unicodeScalars)[...]
        while let ch = chars.popFirst() {
            if quoted {
                if ch == "\"" {
                    if chars.first == "\"" { chars.removeFirst(); field.unicodeScalars.append("\"") } else { quoted = false }
                } else {
                    if ch == "\n" { line += 1 }
                    field.unicodeScalars.append(ch)
                }
                continue
            }
            switch ch {
            case "\"" where field.isEmpty: quoted = true
            case ",": fields.append(field); field = ""
            case "\r": continue
            case "\n":
                fields.append(field)
                records.append((recordLine, fields))
                fields = []
                field = ""
                line += 1
                recordLine = line
            default: field.unicodeScalars.append(ch)
            }
        }
        if !field.isEmpty || !fields.isEmpty {
            fields.append(field)
            records.append((recordLine, fields))
        }
        return records
    }
}
