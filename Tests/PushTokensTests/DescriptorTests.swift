import Foundation
import PushTokens
import Testing

@Suite("Provider descriptors: built-in copy, overrides, errors")
struct DescriptorTests {
    /// A fresh temporary directory holding `files` (name -> contents).
    func directory(_ files: [String: String]) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("pushtokens-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        for (name, text) in files {
            try text.write(to: url.appendingPathComponent(name), atomically: true, encoding: .utf8)
        }
        return url
    }

    @Test("the compiled-in descriptors equal providers/*.json (run scripts/gen-builtin-providers.sh after editing)")
    func builtInMatchesFiles() throws {
        let directory = RepositoryPaths.providers.path
        let names = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".json") }
        #expect(Set(names.map { String($0.dropLast(5)) }) == Set(ProviderRegistry.builtIn.providerIDs))
        let fromFiles = try ProviderRegistry(descriptors: []).merging(directory: directory)
        #expect(fromFiles.providerIDs == ProviderRegistry.builtIn.providerIDs)
        for id in fromFiles.providerIDs {
            #expect(fromFiles.descriptor(for: id) == ProviderRegistry.builtIn.descriptor(for: id), "descriptor \(id) drifted")
        }
    }

    @Test("the built-in registry has the seven documented providers")
    func builtInIDs() {
        #expect(ProviderRegistry.builtIn.providerIDs == ["apns", "chrome", "edge", "fcm", "firefox", "hms", "safari"])
        #expect(ProviderRegistry.builtIn.descriptor(for: "edge")?.endpointHosts == ["*.notify.windows.com"])
        #expect(ProviderRegistry.builtIn.descriptor(for: "blackberry") == nil)
    }

    @Test("an override adds a self-hosted push service to chrome, which then validates")
    func overrideAddsHost() throws {
        let endpoint = "https://push.example.org/push/v1/abc123"
        let input = Samples.subscription(endpoint)
        #expect(throws: TokenRejection.self) { try ProviderRegistry.builtIn.normalize(provider: "chrome", input: input) }
        let folder = try directory([
            "chrome.json": """
            {"id": "chrome", "platform": "chrome", "namespace": "webpush", "kind": "webpush",
             "endpointHosts": ["fcm.googleapis.com", "push.example.org"]}
            """,
            "README.txt": "not a descriptor, ignored",
        ])
        defer { try? FileManager.default.removeItem(at: folder) }
        let registry = try ProviderRegistry.builtIn.merging(directory: folder.path)
        let token = try registry.normalize(provider: "chrome", input: input)
        #expect(token.subscription?.endpoint == endpoint)
        #expect(token.tokenHash == pushTokenHash(namespace: "webpush", key: endpoint))
        #expect(registry.providerIDs == ProviderRegistry.builtIn.providerIDs)
        // The built-in registry itself is unchanged.
        #expect(ProviderRegistry.builtIn.descriptor(for: "chrome")?.endpointHosts == ["fcm.googleapis.com"])
    }

    @Test("a new provider file adds a provider; other hosts now name it in suggestions")
    func newProvider() throws {
        let folder = try directory([
            "selfpush.json": """
            {"id": "selfpush", "platform": "chrome", "namespace": "webpush", "kind": "webpush",
             "endpointHosts": ["*.push.example.net"], "endpointPathPrefixes": ["/p/"]}
            """,
        ])
        defer { try? FileManager.default.removeItem(at: folder) }
        let registry = try ProviderRegistry.builtIn.merging(directory: folder.path + "/")
        #expect(registry.providerIDs.contains("selfpush"))
        let input = Samples.subscription("https://eu.push.example.net/p/xyz")
        #expect(try registry.normalize(provider: "selfpush", input: input).platform == "chrome")
        let rejection = try #require(throws: TokenRejection.self) { try registry.normalize(provider: "chrome", input: input) }
        #expect(rejection.suggestedProvider == "selfpush")
    }

    @Test("wrapper ids (Expo tokens, UUIDs) are refused where the descriptor says so, before an APNs token is decoded")
    func wrapperIDsFollowTheDescriptor() throws {
        for id in ["apns", "fcm", "hms"] {
            #expect(ProviderRegistry.builtIn.descriptor(for: id)?.rejectsWrapperIDs == true, "\(id)")
        }
        // An operator's own push service may issue UUIDs: without the flag they are kept.
        let plain = ProviderDescriptor(id: "selfpush", platform: "android", namespace: "selfpush", kind: .opaque)
        #expect(try ProviderRegistry(descriptors: [plain]).normalize(provider: "selfpush", input: .text(Samples.uuid)).pushToken == Samples.uuid)
        var strict = plain
        strict.rejectsWrapperIDs = true
        let rejection = try #require(throws: TokenRejection.self) {
            try ProviderRegistry(descriptors: [strict]).normalize(provider: "selfpush", input: .text(Samples.uuid))
        }
        #expect(rejection.rule == TokenRejection.Rule.looksLikeUUID)
        #expect(rejection.reason.contains("never a selfpush token") && rejection.reason.contains("native selfpush token"), "\(rejection.reason)")

        // A UUID is valid unpadded base64url (27 bytes): an apns-kind provider with a low minimum would
        // accept it, unless the flag refuses it before the reader decodes anything.
        let lowMinimum = ProviderDescriptor(id: "tinyapns", platform: "ios", namespace: "apns", kind: .apns, minBytes: 16, maxBytes: 200)
        let decoded = try ProviderRegistry(descriptors: [lowMinimum]).normalize(provider: "tinyapns", input: .text(Samples.uuid))
        #expect(decoded.pushToken.utf8.count == 54)
        var lowMinimumStrict = lowMinimum
        lowMinimumStrict.rejectsWrapperIDs = true
        let apnsRejection = try #require(throws: TokenRejection.self) {
            try ProviderRegistry(descriptors: [lowMinimumStrict]).normalize(provider: "tinyapns", input: .text(Samples.uuid))
        }
        #expect(apnsRejection.rule == TokenRejection.Rule.looksLikeUUID)
    }

    @Test("a missing directory changes nothing")
    func missingDirectory() throws {
        let registry = try ProviderRegistry.builtIn.merging(directory: "/nonexistent/pushtokens-\(UUID().uuidString)")
        #expect(registry.providerIDs == ProviderRegistry.builtIn.providerIDs)
    }

    struct BadFile: Sendable, CustomTestStringConvertible {
        var json: String
        var field: String
        var testDescription: String { "field \(field)" }
    }

    static let badFiles: [BadFile] = [
        BadFile(json: #"{"id": "chrome", "platform": "chrome", "namespace": "webpush", "kind": "webpush", "endpointHosts": ["fcm.googleapis.com", "https://bad.example"]}"#, field: "endpointHosts[1]"),
        BadFile(json: #"{"id": "chrome", "platform": "chrome", "namespace": "webpush", "endpointHosts": ["a.example"]}"#, field: "kind"),
        BadFile(json: #"{"id": "x", "platform": "blackberry", "namespace": "x", "kind": "opaque"}"#, field: "platform"),
        BadFile(json: #"{"id": "x", "platform": "android", "namespace": "x", "kind": "opaque", "endpointHost": ["a"]}"#, field: "endpointHost"),
        BadFile(json: #"{"id": "x", "platform": "android", "namespace": "x", "kind": "opaque", "maxLength": "4096"}"#, field: "maxLength"),
        BadFile(json: #"{"id": "x", "platform": "ios", "namespace": "apns", "kind": "apns", "minBytes": 32}"#, field: "maxBytes"),
        BadFile(json: #"{"id": "x", "platform": "ios", "namespace": "apns", "kind": "apns", "minBytes": 64, "maxBytes": 32}"#, field: "maxBytes"),
        BadFile(json: #"{"id": "x", "platform": "ios", "namespace": "apns", "kind": "apns", "minBytes": 32, "maxBytes": 200, "maxLength": 4}"#, field: "maxLength"),
        BadFile(json: #"{"id": "Bad Id", "platform": "ios", "namespace": "apns", "kind": "apns"}"#, field: "id"),
        BadFile(json: #"{"id": "x", "platform": "chrome", "namespace": "webpush", "kind": "webpush"}"#, field: "endpointHosts"),
        BadFile(json: #"{"id": "x", "platform": "chrome", "namespace": "webpush", "kind": "webpush", "endpointHosts": ["a.example"], "endpointPathPrefixes": ["p/"]}"#, field: "endpointPathPrefixes[0]"),
        BadFile(json: #"{"id": "x", "platform": "chrome", "#, field: "$"),
        BadFile(json: #"{"id": "x", "platform": "android", "namespace": "x", "kind": "opaque", "rejectsWrapperIDs": "yes"}"#, field: "rejectsWrapperIDs"),
        BadFile(json: #"{"id": "x", "platform": "chrome", "namespace": "webpush", "kind": "webpush", "endpointHosts": ["a.example"], "rejectsWrapperIDs": true}"#, field: "rejectsWrapperIDs"),
    ]

    @Test("an invalid descriptor file throws an error naming the file and the field", arguments: badFiles)
    func invalidFile(_ bad: BadFile) throws {
        let folder = try directory(["good.json": #"{"id": "ok", "platform": "android", "namespace": "ok", "kind": "opaque"}"#, "bad.json": bad.json])
        defer { try? FileManager.default.removeItem(at: folder) }
        let error = try #require(throws: DescriptorError.self) { try ProviderRegistry.builtIn.merging(directory: folder.path) }
        #expect(error.file.hasSuffix("/bad.json"))
        #expect(error.field == bad.field)
        #expect(error.description.contains("bad.json") && error.description.contains("'\(bad.field)'"), "\(error)")
    }

    @Test("two files with one id are an error naming the second file and the id field")
    func duplicateIDs() throws {
        let text = #"{"id": "same", "platform": "android", "namespace": "same", "kind": "opaque"}"#
        let folder = try directory(["a.json": text, "b.json": text])
        defer { try? FileManager.default.removeItem(at: folder) }
        let error = try #require(throws: DescriptorError.self) { try ProviderRegistry.builtIn.merging(directory: folder.path) }
        #expect(error.file.hasSuffix("/b.json") && error.field == "id")
    }

    @Test("descriptors round-trip through Codable")
    func codable() throws {
        for id in ProviderRegistry.builtIn.providerIDs {
            let descriptor = try #require(ProviderRegistry.builtIn.descriptor(for: id))
            let data = try JSONEncoder().encode(descriptor)
            #expect(try JSONDecoder().decode(ProviderDescriptor.self, from: data) == descriptor)
        }
    }
}
