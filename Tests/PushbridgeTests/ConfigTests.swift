import Foundation
import PushbridgeConfig
import Testing
@testable import PushbridgeServer

@Suite("Configuration")
struct ConfigTests {
    func write(_ yaml: String) throws -> String {
        let path = NSTemporaryDirectory() + "pushbridge-config-\(UUID().uuidString).yaml"
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func expectError(_ yaml: String, env: [String: String] = [:], key: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let path = try write(yaml)
        defer { try? FileManager.default.removeItem(atPath: path) }
        do {
            _ = try ConfigLoader.load(file: path, environment: env)
            Issue.record("no error for \(key)", sourceLocation: sourceLocation)
        } catch let error as ConfigError {
            #expect(error.key == key, "\(error)", sourceLocation: sourceLocation)
            #expect(error.description.contains(key), sourceLocation: sourceLocation)
        }
    }

    @Test("the shipped config/pushbridge.yaml equals the built-in defaults")
    func shippedDefault() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let file = try ConfigLoader.load(file: root.appendingPathComponent("config/pushbridge.yaml").path, environment: [:])
        let builtIn = try ConfigLoader.load(file: nil, environment: [:])
        #expect(file.http.port == 8080 && builtIn.http.port == 8080)
        #expect(file.storageURL == builtIn.storageURL)
        #expect(file.emarsys.requestTimeoutSeconds == builtIn.emarsys.requestTimeoutSeconds)
        #expect(file.emarsys.sdkVersion == builtIn.emarsys.sdkVersion && file.emarsys.eventsAPIVersion == builtIn.emarsys.eventsAPIVersion)
        #expect(file.emarsys.sandbox && builtIn.emarsys.sandbox)
        #expect(file.apps.map(\.code) == builtIn.apps.map(\.code))
        #expect(file.apps.first?.policy(eventsAPIVersion: file.emarsys.eventsAPIVersion) == builtIn.apps.first?.policy(eventsAPIVersion: nil))
        // The production example parses too, and talks to the real hosts.
        let prod = try ConfigLoader.load(file: root.appendingPathComponent("config/production.example.yaml").path, environment: [
            "PUSHBRIDGE_KEYS_EMS12": "abcdefghijklmnop1234", "PUSHBRIDGE_WEBHOOK_SECRET_EMS12": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        ])
        #expect(!prod.emarsys.sandbox)
        #expect(prod.emarsys.clientServiceURL == "https://me-client.eservice.emarsys.net")
        #expect(prod.apps.first?.apiKeys == ["abcdefghijklmnop1234"])
        #expect(prod.apps.first?.webhooks.map(\.url) == ["https://backend.example.com/pushbridge"])
        #expect(prod.webhooks.retryMaxDelayMs == 3_600_000)
    }

    @Test("environment variables override the file, in the contract's spelling and the camelCase-split one")
    func environmentOverrides() throws {
        let path = try write("http:\n  port: 8081\nemarsys:\n  sandbox: true\n")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let c = try ConfigLoader.load(file: path, environment: [
            "PUSHBRIDGE_HTTP_PORT": "9000",
            "PUSHBRIDGE_EMARSYS_SANDBOX": "false",
            "PUSHBRIDGE_EMARSYS_CLIENTSERVICEURL": "http://me.example:1234/prefix",
            "PUSHBRIDGE_EMARSYS_EVENT_SERVICE_URL": "http://events.example",
            "PUSHBRIDGE_STORAGE_URL": "sqlite:///var/tmp/x.sqlite",
            "PUSHBRIDGE_EMARSYS_RETRY_INITIALDELAYMS": "250",
        ])
        #expect(c.http.port == 9000)
        #expect(!c.emarsys.sandbox)
        #expect(c.emarsys.clientServiceURL == "http://me.example:1234/prefix")
        #expect(c.emarsys.eventServiceURL == "http://events.example")
        #expect(c.sqlitePath == "/var/tmp/x.sqlite")
        #expect(c.emarsys.retry.initialDelayMs == 250)
    }

    @Test("errors name the key", arguments: [
        ("http:\n  port: seventy\n", "http.port"),
        ("http:\n  port: 70000\n", "http.port"),
        ("http:\n  prot: 80\n", "http.prot"),
        ("metrics:\n  port: 8080\n", "metrics.port"),
        ("metrics:\n  port: 70000\n", "metrics.port"),
        ("storage:\n  url: mysql://x\n", "storage.url"),
        ("emarsys:\n  clientServiceURL: not a url\n", "emarsys.clientServiceURL"),
        ("emarsys:\n  eventsAPIVersion: v5\n", "emarsys.eventsAPIVersion"),
        ("emarsys:\n  retry: { initialDelayMs: 500, maxDelayMs: 100 }\n", "emarsys.retry.maxDelayMs"),
        ("emarsys:\n  maxConcurrentRequests: 0\n", "emarsys.maxConcurrentRequests"),
        ("log:\n  level: loud\n", "log.level"),
        ("apps:\n  - code: EMS12-34567\n    startEvent: app:go\n", "apps[0].startEvent"),
        ("apps:\n  - code: EMS12-34567\n    apiKeys: [short]\n", "apps[0].apiKeys"),
        ("apps:\n  - code: EMS12-34567\n    retention: { unregisterAfter: 10 }\n", "apps[0].retention.unregisterAfter"),
        ("apps:\n  - code: EMS12-34567\n    retention: { forgetAfter: 2w }\n", "apps[0].retention.forgetAfter"),
        ("apps:\n  - code: EMS12-34567\n    retention: { unregisterAfter: 0s }\n", "apps[0].retention.unregisterAfter"),
        ("apps:\n  - code: EMS12-34567\n    retention: { unregisterAfter: +5s }\n", "apps[0].retention.unregisterAfter"),
        ("apps:\n  - code: EMS12-34567\n    retention: { unregisterAfter: 99999999999d }\n", "apps[0].retention.unregisterAfter"),
        ("apps:\n  - code: EMS12-34567\n    retention: { keepFor: 1d }\n", "apps[0].retention.keepFor"),
        ("apps:\n  - code: EMS12-34567\n    retention: 30d\n", "apps[0].retention"),
        ("apps:\n  - code: EMS12-34567\n  - code: EMS12-34567\n", "apps[1].code"),
        ("apps:\n  - code: EMS12-34567\n    colour: blue\n", "apps[0].colour"),
        ("apps:\n  - code: EMS12_34567\n", "apps[0].code"),
        ("apps:\n  - code: EMS12-34567\n    clientPath: web\n", "apps[0].clientPath"),
        ("apps:\n  - code: EMS12-34567\n    eventsAPIVersion: v5\n", "apps[0].eventsAPIVersion"),
        ("emarsys:\n  sdkVersion: \"3.11 beta\"\n", "emarsys.sdkVersion"),
        ("emarsys:\n  refreshReplayDelayMs: -1\n", "emarsys.refreshReplayDelayMs"),
        ("storage:\n  timeoutMs: 50\n", "storage.timeoutMs"),
        ("webhooks:\n  maxAgeHours: 0\n", "webhooks.maxAgeHours"),
        ("webhooks:\n  timeoutSeconds: 0\n", "webhooks.timeoutSeconds"),
        ("history:\n  perDevice: 0\n", "history.perDevice"),
        ("history:\n  maxAgeDays: 4000\n", "history.maxAgeDays"),
        ("apps:\n  - code: EMS12-34567\n    webhooks: {url: \"https://x.example\"}\n", "apps[0].webhooks"),
        ("apps:\n  - code: EMS12-34567\n    webhooks:\n      - {url: \"ftp://x.example\", secret: \"\(ConfigTests.secret)\"}\n", "apps[0].webhooks[0].url"),
        ("apps:\n  - code: EMS12-34567\n    webhooks:\n      - {url: \"https://x.example\"}\n", "apps[0].webhooks[0].secret"),
        ("apps:\n  - code: EMS12-34567\n    webhooks:\n      - {url: \"https://x.example\", secret: \"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"}\n", "apps[0].webhooks[0].secret"),
        ("apps:\n  - code: EMS12-34567\n    webhooks:\n      - {url: \"https://x.example\", secret: \"whsec_c2hvcnQ=\"}\n", "apps[0].webhooks[0].secret"),
        ("apps:\n  - code: EMS12-34567\n    webhooks:\n      - {url: \"https://x.example\", secret: \"whsec_!!!\"}\n", "apps[0].webhooks[0].secret"),
        ("apps:\n  - code: EMS12-34567\n    webhooks:\n      - {url: \"https://x.example\", secretEnv: UNSET_HOOK_SECRET}\n", "apps[0].webhooks[0].secretEnv"),
        ("apps:\n  - code: EMS12-34567\n    webhooks:\n      - {url: \"https://x.example\", secret: \"\(ConfigTests.secret)\", events: [device.exploded]}\n", "apps[0].webhooks[0].events"),
        ("apps:\n  - code: EMS12-34567\n    webhooks:\n      - {url: \"https://x.example\", secret: \"\(ConfigTests.secret)\", events: []}\n", "apps[0].webhooks[0].events"),
        ("apps:\n  - code: EMS12-34567\n    webhooks:\n      - {url: \"https://x.example\", secret: \"\(ConfigTests.secret)\", colour: red}\n", "apps[0].webhooks[0].colour"),
        // A code that ends in a newline (a regular expression's `$` let this one through).
        ("apps:\n  - code: \"EMS12-34567\\n\"\n", "apps[0].code"),
    ])
    func errorsNameTheKey(yaml: String, key: String) throws {
        try expectError(yaml, key: key)
    }

    @Test("SDK parity defaults: 20 s ME timeout, 500 ms replay pause, the bridge's version as sdkVersion, events API per platform")
    func sdkParityDefaults() throws {
        let c = try ConfigLoader.load(file: nil, environment: [:])
        // Android's SDK waits 20 s for ME, iOS's 30 s; the bridge used to give up after 10.
        #expect(c.emarsys.requestTimeoutSeconds == 20)
        #expect(c.emarsys.refreshReplayDelayMs == 500)
        #expect(c.storageTimeoutMs == 5000)
        #expect(try ConfigLoader.load(file: nil, environment: ["PUSHBRIDGE_STORAGE_TIMEOUTMS": "1500"]).storageTimeoutMs == 1500)
        #expect(c.emarsys.sdkVersion == PushbridgeVersion.current)
        #expect(c.emarsys.eventsAPIVersion == nil)
        let policy = try #require(c.apps.first).policy(eventsAPIVersion: c.emarsys.eventsAPIVersion)
        #expect(policy.eventsAPIVersion(platform: "android") == .v4)
        #expect(policy.eventsAPIVersion(platform: "ios") == .v4)
        #expect(policy.eventsAPIVersion(platform: "android-huawei") == .v4)
        #expect(policy.eventsAPIVersion(platform: "chrome") == .v3)
        #expect(policy.codePath == .apps)
    }

    @Test("the events API: the app's key wins over the global one, which wins over the per-platform choice")
    func eventsAPIPrecedence() throws {
        let path = try write("""
            emarsys:
              eventsAPIVersion: v3
              sdkVersion: "3.11.0"
              refreshReplayDelayMs: 0
            apps:
              - code: EMS12-34567
              - code: EMS12-00000
                eventsAPIVersion: v4
                clientPath: domains
            """)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let c = try ConfigLoader.load(file: path, environment: ["PUSHBRIDGE_EMARSYS_SDKVERSION": "3.12.0"])
        #expect(c.emarsys.sdkVersion == "3.12.0")
        #expect(c.emarsys.refreshReplayDelayMs == 0)
        let first = c.apps[0].policy(eventsAPIVersion: c.emarsys.eventsAPIVersion)
        let second = c.apps[1].policy(eventsAPIVersion: c.emarsys.eventsAPIVersion)
        #expect(first.eventsAPIVersion(platform: "android") == .v3)
        #expect(second.eventsAPIVersion(platform: "chrome") == .v4)
        #expect(first.codePath == .apps && second.codePath == .domains)
    }

    @Test("the bridge's version is kept in one place: the OpenAPI document states the same")
    func versionInOnePlace() {
        #expect(OpenAPIDocument.text.contains("\n  version: \(PushbridgeVersion.current)\n"))
    }

    @Test("a bad environment value names the key")
    func badEnvironmentValue() throws {
        try expectError("http:\n  port: 8080\n", env: ["PUSHBRIDGE_HTTP_PORT": "eighty"], key: "http.port")
    }

    /// A valid secret: the one of the Standard Webhooks specification's example (24 bytes).
    static let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

    @Test("webhooks: endpoints with a secret or a secret from the environment, an event filter, and the shared settings")
    func webhooks() throws {
        let path = try write("""
            webhooks: { maxAgeHours: 6, timeoutSeconds: 2.5 }
            apps:
              - code: EMS12-34567
                webhooks:
                  - { url: "https://backend.example.com/pushbridge", secret: "\(Self.secret)", events: [device.registered, device.failed] }
                  - { url: "http://127.0.0.1:9/hook", secretEnv: HOOK_SECRET }
              - code: EMS98-76543
            """)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let c = try ConfigLoader.load(file: path, environment: ["HOOK_SECRET": "whsec_" + Data(repeating: 7, count: 32).base64EncodedString()])
        #expect(c.webhooks.maxAgeHours == 6 && c.webhooks.timeoutSeconds == 2.5)
        let hooks = try #require(c.apps.first?.webhooks)
        #expect(hooks.map(\.url) == ["https://backend.example.com/pushbridge", "http://127.0.0.1:9/hook"])
        #expect(hooks[0].secret.key.count == 24 && hooks[1].secret.key == Array(repeating: 7, count: 32))
        #expect(hooks[0].wants(.registered) && hooks[0].wants(.failed) && !hooks[0].wants(.unregistered) && !hooks[0].wants(.deleted))
        #expect(hooks[1].events == nil && hooks[1].wants(.deleted))
        #expect(c.apps.last?.webhooks.isEmpty == true)
        // The secret never shows in a description of the configuration.
        #expect(!"\(hooks)".contains("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"))
        // The shared settings are environment keys like every other scalar.
        let overridden = try ConfigLoader.load(file: path, environment: [
            "HOOK_SECRET": "whsec_" + Data(repeating: 7, count: 32).base64EncodedString(), "PUSHBRIDGE_WEBHOOKS_MAXAGEHOURS": "48",
        ])
        #expect(overridden.webhooks.maxAgeHours == 48)
    }

    @Test("history: the defaults, the file and the environment")
    func history() throws {
        #expect(BridgeConfiguration().history.perDevice == 100 && BridgeConfiguration().history.maxAgeDays == 30)
        let path = try write("history: { perDevice: 20, maxAgeDays: 7 }\n")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let c = try ConfigLoader.load(file: path, environment: [:])
        #expect(c.history.perDevice == 20 && c.history.maxAgeDays == 7)
        let overridden = try ConfigLoader.load(file: path, environment: ["PUSHBRIDGE_HISTORY_PERDEVICE": "500"])
        #expect(overridden.history.perDevice == 500)
    }

    @Test("retention: off by default; durations in seconds, minutes, hours and days")
    func retention() throws {
        #expect(BridgeConfiguration.App(code: "EMS12-34567").retention.isOff)
        let path = try write("""
            apps:
              - code: EMS12-34567
                retention: { unregisterAfter: 270d, forgetAfter: 36h }
              - code: EMS12-34568
                retention: { unregisterAfter: 90s }
              - code: EMS12-34569
                retention: { forgetAfter: 15m }
              - code: EMS12-34570

            """)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let apps = try ConfigLoader.load(file: path, environment: [:]).apps
        #expect(apps.map(\.retention) == [
            BridgeConfiguration.Retention(unregisterAfter: 270 * 86_400, forgetAfter: 36 * 3600),
            BridgeConfiguration.Retention(unregisterAfter: 90),
            BridgeConfiguration.Retention(forgetAfter: 900),
            BridgeConfiguration.Retention(),
        ])
    }

    @Test("apiKeysEnv adds comma-separated keys from the environment")
    func apiKeysFromEnvironment() throws {
        let path = try write("apps:\n  - code: EMS12-34567\n    apiKeys: [\"aaaaaaaaaaaaaaaa1\"]\n    apiKeysEnv: MY_KEYS\n")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let c = try ConfigLoader.load(file: path, environment: ["MY_KEYS": "bbbbbbbbbbbbbbbb2, cccccccccccccccc3"])
        #expect(c.apps.first?.apiKeys == ["aaaaaaaaaaaaaaaa1", "bbbbbbbbbbbbbbbb2", "cccccccccccccccc3"])
    }

    @Test("the served OpenAPI document is the repository's openapi.yaml")
    func openAPIInSync() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let file = try String(contentsOf: root.appendingPathComponent("openapi.yaml"), encoding: .utf8)
        #expect(OpenAPIDocument.text + "\n" == file, "run scripts/gen-openapi-swift.sh")
    }

    @Test("the deploy files' configurations load, with storage and keys from the environment as the files set them")
    func deployConfigurations() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let environment = [
            "PUSHBRIDGE_STORAGE_URL": "postgres://pushbridge:pushbridge@postgres:5432/pushbridge",
            "PUSHBRIDGE_STORAGE_ENCRYPTIONKEY": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
            "PUSHBRIDGE_API_KEYS": "aaaaaaaaaaaaaaaa1",
        ]
        let compose = try ConfigLoader.load(file: root.appendingPathComponent("deploy/compose/pushbridge.yaml").path, environment: environment)
        #expect(compose.storageURL.hasPrefix("postgres://") && !compose.emarsys.sandbox && compose.emarsys.clientServiceURL == "http://sandbox:8090")
        let kubernetes = try ConfigLoader.load(file: root.appendingPathComponent("deploy/kubernetes/pushbridge.yaml").path, environment: environment)
        #expect(kubernetes.storageURL.hasPrefix("postgres://") && kubernetes.apps.first?.apiKeys == ["aaaaaaaaaaaaaaaa1"])
        // The grace period of deployment.yaml covers the drain, the deadline and the preStop pause.
        let deployment = try String(contentsOf: root.appendingPathComponent("deploy/kubernetes/deployment.yaml"), encoding: .utf8)
        let grace = try #require(deployment.split(separator: "\n").first { $0.contains("terminationGracePeriodSeconds:") }?.split(separator: ":").last)
        #expect(Double(grace.trimmingCharacters(in: .whitespaces))! > kubernetes.shutdownDrainSeconds + kubernetes.shutdownDeadlineSeconds + 5)
    }
}
