import PushTokens
import Testing
import TestSupport

@Suite("Properties over generated tokens (seeded)")
struct PropertyTests {
    static let providers = ["apns", "fcm", "hms", "chrome", "firefox", "safari", "edge"]

    @Test("every textual variant of a valid token gives the same pushToken and tokenHash", arguments: providers)
    func variantsAgree(provider: String) throws {
        var generator = TokenGenerator(random: SplitMix64(seed: 0x5EED_0001 &+ UInt64(provider.utf8.reduce(0) { $0 &* 31 &+ Int($1) })))
        for round in 0..<120 {
            let generated = generator.token(for: provider)
            for (index, variant) in generated.variants.enumerated() {
                switch outcome(provider: provider, variant) {
                case .success(let token):
                    #expect(token.pushToken == generated.pushToken, "\(provider) round \(round) variant \(index): \(variant)")
                    #expect(token.tokenHash == generated.tokenHash, "\(provider) round \(round) variant \(index)")
                case .failure(let rejection):
                    Issue.record("\(provider) round \(round) variant \(index) rejected: \(rejection) input: \(variant)")
                }
            }
        }
    }

    @Test("normalising a canonical pushToken is the identity", arguments: providers)
    func canonicalIsFixedPoint(provider: String) throws {
        var generator = TokenGenerator(random: SplitMix64(seed: 0x5EED_0002))
        for round in 0..<200 {
            let generated = generator.token(for: provider)
            let again = try ProviderRegistry.builtIn.normalize(provider: provider, input: .text(generated.pushToken))
            #expect(again.pushToken == generated.pushToken, "\(provider) round \(round)")
            #expect(again.tokenHash == generated.tokenHash, "\(provider) round \(round)")
        }
    }

    @Test("a relabelled or re-keyed subscription keeps its tokenHash (the endpoint is the identity)")
    func webPushHashIsTheEndpoint() throws {
        var generator = TokenGenerator(random: SplitMix64(seed: 0x5EED_0003))
        let first = generator.token(for: "chrome")
        let token = try ProviderRegistry.builtIn.normalize(provider: "chrome", input: .text(first.pushToken))
        let subscription = try #require(token.subscription)
        let newKeys = generator.token(for: "chrome").pushToken  // another subscription's keys
        let other = try #require(try ProviderRegistry.builtIn.normalize(provider: "chrome", input: .text(newKeys)).subscription)
        let rekeyed = #"{"endpoint":"\#(subscription.endpoint)","expirationTime":null,"keys":{"p256dh":"\#(other.p256dh)","auth":"\#(other.auth)"}}"#
        let again = try ProviderRegistry.builtIn.normalize(provider: "chrome", input: .text(rekeyed))
        #expect(again.tokenHash == token.tokenHash)
        #expect(again.pushToken == rekeyed, "the new keys reach the backend")
        #expect(again.subscription?.p256dh == other.p256dh)
    }

    /// Random byte strings up to 8 KiB, read as lossy UTF-8: built once and shared by every provider
    /// (the lossy decoding itself is slow in debug builds).
    static let randomTexts: [String] = {
        var random = SplitMix64(seed: 0x5EED_0004)
        return (0..<250).map { round in
            let count = round < 50 ? round : (round < 60 ? 8192 : Int.random(in: 0...8192, using: &random))
            return String(decoding: random.bytes(count), as: UTF8.self)
        }
    }()

    @Test("random bytes up to 8 KiB never crash: each gives a rejection or a token that is its own canonical form", arguments: providers + ["blackberry"])
    func randomInputs(provider: String) {
        for (round, text) in Self.randomTexts.enumerated() {
            for input in [TokenInput.text(text), .json(.string(text))] {
                check(provider: provider, input, context: "round \(round), \(text.utf8.count) UTF-8 bytes")
            }
        }
    }

    @Test("random printable ASCII up to 8 KiB (the alphabets tokens use) never crashes", arguments: providers)
    func randomASCII(provider: String) {
        var random = SplitMix64(seed: 0x5EED_0006)
        let alphabet = Alphabets.tokenSafe + ":/+=.<> {}\"\\"
        for round in 0..<200 {
            let text = random.string(Int.random(in: 0...8192, using: &random), from: alphabet)
            check(provider: provider, .text(text), context: "round \(round)")
        }
    }

    @Test("mutated valid inputs never crash: each gives a rejection or a stable token", arguments: providers)
    func mutatedInputs(provider: String) {
        var generator = TokenGenerator(random: SplitMix64(seed: 0x5EED_0005))
        let alphabet = Array("\"\\{}[]:,./+-_=<> \t\n\u{0}0aZé\u{FFFD}")
        for round in 0..<100 {
            for variant in generator.token(for: provider).variants {
                guard case .text(let text) = variant, !text.isEmpty else { continue }
                var characters = Array(text)
                for _ in 0..<Int.random(in: 1...3, using: &generator.random) {
                    let at = Int.random(in: 0..<characters.count, using: &generator.random)
                    switch Int.random(in: 0..<3, using: &generator.random) {
                    case 0: characters[at] = alphabet.randomElement(using: &generator.random)!
                    case 1: characters.remove(at: at)
                    default: characters.insert(alphabet.randomElement(using: &generator.random)!, at: at)
                    }
                    if characters.isEmpty { break }
                }
                check(provider: provider, .text(String(characters)), context: "round \(round)")
            }
        }
    }

    /// The invariant for arbitrary input: a rejection with a rule and a reason that names it, or a
    /// token whose pushToken normalises to itself with the same hash.
    private func check(provider: String, _ input: TokenInput, context: String) {
        switch outcome(provider: provider, input) {
        case .failure(let rejection):
            #expect(!rejection.rule.isEmpty && rejection.reason.hasPrefix(rejection.rule + ": "), "\(provider) \(context)")
        case .success(let token):
            #expect(token.tokenHash.utf8.count == 64, "\(provider) \(context)")
            let again = outcome(provider: provider, .text(token.pushToken))
            #expect((try? again.get())?.pushToken == token.pushToken, "\(provider) \(context): \(token.pushToken.prefix(80))")
            #expect((try? again.get())?.tokenHash == token.tokenHash, "\(provider) \(context)")
        }
    }
}
