import Foundation
import PushTokens
import Testing

/// One entry of push-tokens.json.
struct TokenVector: Sendable, Decodable, CustomTestStringConvertible {
    var provider: String
    var input: JSONValue
    var valid: Bool
    var reason: String
    var pushToken: String?
    var tokenHash: String?
    var index = 0

    enum CodingKeys: String, CodingKey { case provider, input, valid, reason, pushToken, tokenHash }

    var testDescription: String { "#\(index) \(provider) \(valid ? "valid" : "invalid"): \(reason)" }

    static func load() throws -> [TokenVector] {
        let data = try Data(contentsOf: RepositoryPaths.vectors)
        var vectors = try JSONDecoder().decode([TokenVector].self, from: data)
        for index in vectors.indices { vectors[index].index = index }
        return vectors
    }
}

@Suite("Shared test vectors (docs/push-tokens.md)")
struct VectorTests {
    @Test("every vector gives its pushToken and tokenHash, or is rejected", arguments: try TokenVector.load())
    func vector(_ vector: TokenVector) throws {
        let result = outcome(provider: vector.provider, TokenInput(vectorInput: vector.input))
        switch (vector.valid, result) {
        case (true, .success(let token)):
            #expect(token.pushToken == vector.pushToken, "pushToken for: \(vector.reason)")
            #expect(token.tokenHash == vector.tokenHash, "tokenHash for: \(vector.reason)")
            #expect(token.provider == vector.provider)
        case (true, .failure(let rejection)):
            Issue.record("valid vector rejected (\(vector.reason)): \(rejection)")
        case (false, .success(let token)):
            Issue.record("invalid vector accepted (\(vector.reason)): \(token.pushToken.prefix(80))")
        case (false, .failure(let rejection)):
            #expect(!rejection.rule.isEmpty && rejection.reason.hasPrefix(rejection.rule + ": "), "\(vector.reason)")
            if vector.provider == "blackberry" {
                #expect(rejection.rule == "unknown-provider", "\(vector.reason)")
            }
        }
    }

    @Test("the vector file is there and covers every built-in provider")
    func coverage() throws {
        let vectors = try TokenVector.load()
        #expect(vectors.count >= 47)
        let providers = Set(vectors.map(\.provider))
        for id in ProviderRegistry.builtIn.providerIDs {
            #expect(providers.contains(id), "no vector for provider \(id)")
        }
    }

    @Test("the vendored copy of the vectors is there and equals the shared file when that exists")
    func vendoredCopy() throws {
        let vendored = RepositoryPaths.testsDirectory().appendingPathComponent("Vectors/push-tokens.json")
        let copy = try Data(contentsOf: vendored)
        #expect(try JSONDecoder().decode([TokenVector].self, from: copy).count >= 47)
        if RepositoryPaths.vectors != vendored {
            #expect(copy == (try Data(contentsOf: RepositoryPaths.vectors)), "refresh Tests/PushTokensTests/Vectors from shared/vectors")
        }
    }

    @Test("platform and namespace of valid vectors follow the provider")
    func platforms() throws {
        let expected: [String: (String, String)] = [
            "apns": ("ios", "apns"), "fcm": ("android", "fcm"), "hms": ("android-huawei", "hms"),
            "chrome": ("chrome", "webpush"), "firefox": ("firefox", "webpush"), "edge": ("edge", "webpush"),
        ]
        for vector in try TokenVector.load() where vector.valid {
            let token = try ProviderRegistry.builtIn.normalize(provider: vector.provider, input: TokenInput(vectorInput: vector.input))
            if let (platform, namespace) = expected[vector.provider] {
                #expect(token.platform == platform && token.namespace == namespace, "\(vector.reason)")
            } else {
                // Legacy Safari device tokens travel over APNs.
                #expect(token.platform == "safari" && token.namespace == "apns", "\(vector.reason)")
            }
        }
    }
}
