import Foundation
import PushTokens

/// Paths of the repository, found from this file so tests run from any working directory.
enum RepositoryPaths {
    /// Tests/PushTokensTests, with symbolic links resolved (scratch packages link the sources in).
    static func testsDirectory(_ filePath: String = #filePath) -> URL {
        URL(fileURLWithPath: filePath).resolvingSymlinksInPath().deletingLastPathComponent()
    }

    /// The repository root: two levels above Tests/PushTokensTests.
    static var root: URL { testsDirectory().deletingLastPathComponent().deletingLastPathComponent() }

    static var providers: URL { root.appendingPathComponent("providers") }

    /// The shared vectors beside the repository, else the vendored copy.
    static var vectors: URL {
        let shared = root.deletingLastPathComponent().appendingPathComponent("shared/vectors/push-tokens.json")
        if FileManager.default.fileExists(atPath: shared.path) { return shared }
        return testsDirectory().appendingPathComponent("Vectors/push-tokens.json")
    }
}

enum Alphabets {
    static let tokenSafe = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
}

/// Encodings written independently of the library, so the tests do not check the code with itself.
enum Encode {
    static func hex(_ bytes: [UInt8], uppercase: Bool = false) -> String {
        let text = bytes.map { String(format: "%02x", $0) }.joined()
        return uppercase ? text.uppercased() : text
    }

    static func base64(_ bytes: [UInt8], urlSafe: Bool, padded: Bool) -> String {
        var text = Data(bytes).base64EncodedString()
        if urlSafe { text = text.replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_") }
        if !padded { text = text.replacingOccurrences(of: "=", with: "") }
        return text
    }

    /// The NSData description of old iOS: `<6b596ab0 b60568ef ...>`.
    static func nsDataDescription(_ bytes: [UInt8]) -> String {
        let hex = Array(self.hex(bytes))
        let groups = stride(from: 0, to: hex.count, by: 8).map { String(hex[$0..<min($0 + 8, hex.count)]) }
        return "<" + groups.joined(separator: " ") + ">"
    }
}

extension TokenInput {
    /// A vector's `input`: a JSON string is the raw text; anything else is parsed JSON.
    init(vectorInput: JSONValue) {
        if case .string(let text) = vectorInput { self = .text(text) } else { self = .json(vectorInput) }
    }
}

/// Runs `normalize` and returns the outcome as a value, so tests can look at either side.
func outcome(
    _ registry: ProviderRegistry = .builtIn, provider: String, _ input: TokenInput, environment: String? = nil
) -> Result<NormalizedToken, TokenRejection> {
    do {
        return .success(try registry.normalize(provider: provider, input: input, environment: environment))
    } catch {
        return .failure(error)
    }
}
