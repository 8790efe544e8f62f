import Foundation
import MESandbox
import MobileEngage
import PushbridgeConfig
import PushbridgeServer
import Testing

/// One test per difference `../shared/docs/sdk-parity.md` found between the official SDKs and the bridge, each
/// against the real sandbox over loopback (docs/sdk-parity.md in this repository lists every row).
@Suite("SDK parity: the bridge speaks Mobile Engage as the official SDKs do")
struct SDKParityTests {
    static let app = TestBed.app

    /// Registers `id` with an FCM token and waits until it is registered; returns its client id.
    @discardableResult
    static func register(_ bed: TestBed, _ id: String, provider: String = "fcm", token: Any = Tokens.fcm(), device: [String: Any]? = nil) async throws -> String {
        var body: [String: Any] = ["provider": provider, "token": token]
        if let device { body["device"] = device }
        let answer = try await bed.request("PUT", bed.devicePath(id), json: body)
        #expect(answer.status == 202, "\(String(decoding: answer.body, as: UTF8.self))")
        _ = try await bed.waitForState(id, "registered")
        return try await bed.clientId(of: id)
    }

    static func requests(_ bed: TestBed, client: String) async -> [SandboxRequestRecord] {
        await bed.sandbox.requestLog().filter { $0.clientId == client }
    }

    @Test("X7: after a refresh the replay waits refreshReplayDelayMs, and the wait holds no worker")
    func replayDelay() async throws {
        try await withTestBed(configure: {
            $0.emarsys.refreshReplayDelayMs = 1500
            $0.emarsys.maxConcurrentRequests = 1  // one worker: a worker held during the pause would stall b
        }) { bed in
            let a = try await Self.register(bed, "a")
            await bed.sandbox.expireContactTokens()
            #expect(try await bed.request("PUT", bed.devicePath("a") + "/push-token", json: ["provider": "fcm", "token": Tokens.fcm()]).status == 202)
            // b arrives while a meets its 401 and refreshes.
            #expect(try await bed.request("PUT", bed.devicePath("b"), json: ["provider": "fcm", "token": Tokens.fcm()]).status == 202)
            _ = try await bed.waitForState("a", "registered")
            _ = try await bed.waitForState("b", "registered")

            let log = await Self.requests(bed, client: a)
            let refresh = try #require(log.first { $0.path.hasSuffix("/client/contact-token") && $0.status == 200 })
            let replay = try #require(log.first { $0.seq > refresh.seq && $0.method == "PUT" })
            #expect(replay.status == 204)
            let pause = replay.at.timeIntervalSince(refresh.at)
            #expect(pause >= 1.5, "the replay went \(pause) s after the refresh")
            // b's workflow ran in a's pause: the one worker was free.
            let b = try await bed.clientId(of: "b")
            let during = await Self.requests(bed, client: b).filter { $0.at > refresh.at && $0.at < replay.at }
            #expect(!during.isEmpty, "no request of b went out during a's pause")
        }
    }

    @Test("E1/E9: mobile devices send events on v4 and echo deviceEventState; web push stays on v3")
    func eventsV4() async throws {
        try await withTestBed { bed in
            let android = try await Self.register(bed, "android")
            for i in 0..<3 {
                let answer = try await bed.request("POST", bed.devicePath("android") + "/events", json: ["events": [["name": "e\(i)"]]])
                #expect(answer.status == 202)
                _ = try await bed.waitForState("android", "registered")
            }
            let events = await Self.requests(bed, client: android).filter { $0.path.hasSuffix("/client/events") }
            #expect(events.count == 4)  // the start event and three custom ones
            #expect(events.allSatisfy { $0.path == "/v4/apps/\(Self.app)/client/events" && $0.status / 100 == 2 }, "\(events.map(\.path))")
            let client = try #require(await bed.sandbox.client(android))
            #expect(client.counts.deviceEventStates == 2, "the sandbox answers every other v4 events request with a deviceEventState")
            // The echo itself is checked by the sandbox on every v4 events request: no
            // `device-event-state-not-echoed` violation (`withTestBed` asserts none at all).
            #expect(await bed.sandbox.violations().filter { $0.kind == "device-event-state-not-echoed" }.isEmpty)

            let web = try await Self.register(bed, "web", provider: "chrome", token: Tokens.subscription(host: "fcm.googleapis.com", path: "/fcm/send/"))
            let webEvents = await Self.requests(bed, client: web).filter { $0.path.hasSuffix("/client/events") }
            #expect(webEvents.map(\.path) == ["/v3/apps/\(Self.app)/client/events"])
        }
    }

    @Test("E1: apps[].eventsAPIVersion and the global key override the per-platform choice")
    func eventsVersionConfigured() async throws {
        try await withTestBed(configure: { $0.emarsys.eventsAPIVersion = .v3 }) { bed in
            let android = try await Self.register(bed, "android")
            #expect(await Self.requests(bed, client: android).contains { $0.path == "/v3/apps/\(Self.app)/client/events" })
        }
        // The app's key wins over the global one.
        try await withTestBed(configure: {
            $0.emarsys.eventsAPIVersion = .v3
            $0.apps = [.init(code: TestBed.app, eventsAPIVersion: .v4)]
        }) { bed in
            let web = try await Self.register(bed, "web", provider: "chrome", token: Tokens.subscription(host: "fcm.googleapis.com", path: "/fcm/send/"))
            #expect(await Self.requests(bed, client: web).contains { $0.path == "/v4/apps/\(Self.app)/client/events" })
        }
    }

    @Test("C6: POST /client always carries pushSettings for mobile devices, shaped as each SDK shapes it")
    func pushSettingsDefault() async throws {
        try await withTestBed { bed in
            let android = try await Self.register(bed, "android")
            let ios = try await Self.register(bed, "ios", provider: "apns", token: Tokens.apnsHex())
            let given = try await Self.register(bed, "given", device: ["pushSettings": ["areNotificationsEnabled": false]])
            let web = try await Self.register(bed, "web", provider: "chrome", token: Tokens.subscription(host: "fcm.googleapis.com", path: "/fcm/send/"))

            func settings(_ client: String) async -> [String: SandboxJSON]? {
                await bed.sandbox.client(client)?.properties?.objectValue?["pushSettings"]?.objectValue
            }
            let a = try #require(await settings(android))
            #expect(a["areNotificationsEnabled"] == .bool(true))
            #expect(a["importance"]?.intValue == 3)
            #expect(a["channelSettings"] == .array([]))
            let i = try #require(await settings(ios))
            #expect(i["authorizationStatus"]?.stringValue == "authorized")
            #expect(i["alertSetting"]?.stringValue == "enabled")
            #expect(i["providesAppNotificationSettings"] == .bool(false))
            // What the backend gave passes through unchanged; web push sends none, as the web SDK.
            #expect(await settings(given) == ["areNotificationsEnabled": .bool(false)])
            #expect(await settings(web) == nil)
            #expect(await bed.sandbox.violations().filter { $0.kind == "missing-push-settings" }.isEmpty)
        }
    }

    @Test("H7/C11/K4: X-Contact-Token goes on POST /client and on the anonymous link whenever one is stored")
    func contactTokenOnClientAndAnonymousLink() async throws {
        try await withTestBed { bed in
            let client = try await Self.register(bed, "d")
            // New device info: POST /client again, now with a contact token stored.
            #expect(try await bed.request("PUT", bed.devicePath("d"), json: ["provider": "fcm", "token": Tokens.fcm(), "device": ["osVersion": "15"]]).status == 202)
            _ = try await bed.waitForState("d", "registered")
            #expect(try await bed.request("PUT", bed.devicePath("d") + "/contact", json: ["fieldValue": "someone@example.com"]).status == 202)
            _ = try await bed.waitForState("d", "registered")
            #expect(try await bed.request("DELETE", bed.devicePath("d") + "/contact").status == 202)
            _ = try await bed.waitForState("d", "registered")

            let log = await Self.requests(bed, client: client)
            let posts = log.filter { $0.method == "POST" && $0.path.hasSuffix("/client") }
            #expect(posts.map(\.contactToken) == [false, true], "the first POST /client has none to send yet")
            let links = log.filter { $0.path.hasSuffix("/client/contact") }
            // anonymous (none stored yet), identified (never, as the SDKs), anonymous logout (stored: sent)
            #expect(links.map(\.contactToken) == [false, false, true])
        }
    }

    @Test("K6: a re-link answered without a refreshToken keeps the stored one, so the next 401 refreshes instead of re-linking")
    func linkWithoutRefreshToken() async throws {
        try await withTestBed(configure: { $0.emarsys.refreshReplayDelayMs = 50 }) { bed in
            let client = try await Self.register(bed, "d")
            // Four 401s on the PUT: three refreshes, then the re-link of the same anonymous contact, whose answer
            // leaves out the refresh token (and ME keeps the one the client has).
            try await bed.addFault(["status": 401, "path": "/client/push-token", "method": "PUT", "count": 4])
            try await bed.addFault(["mode": "no-refresh-token", "path": "/client/contact", "count": 1])
            #expect(try await bed.request("PUT", bed.devicePath("d") + "/push-token", json: ["provider": "fcm", "token": Tokens.fcm()]).status == 202)
            _ = try await bed.waitForState("d", "registered")
            var counts = try #require(await bed.sandbox.client(client)).counts
            #expect(counts.refreshes == 3 && counts.anonymousLinks == 2)
            // The next expiry is answered with the kept refresh token: a refresh, no third link.
            await bed.sandbox.expireContactTokens()
            #expect(try await bed.request("PUT", bed.devicePath("d") + "/push-token", json: ["provider": "fcm", "token": Tokens.fcm()]).status == 202)
            _ = try await bed.waitForState("d", "registered")
            counts = try #require(await bed.sandbox.client(client)).counts
            #expect(counts.refreshes == 4, "the kept refresh token was used")
            #expect(counts.anonymousLinks == 2, "no re-link")
        }
    }

    @Test("K6: a login answered without a refreshToken does not keep the anonymous contact's one: the next 401 re-links the login")
    func loginWithoutRefreshToken() async throws {
        try await withTestBed { bed in
            let client = try await Self.register(bed, "d")
            try await bed.addFault(["mode": "no-refresh-token", "path": "/client/contact", "count": 1])
            #expect(try await bed.request("PUT", bed.devicePath("d") + "/contact", json: ["fieldValue": "someone@example.com"]).status == 202)
            _ = try await bed.waitForState("d", "registered")
            await bed.sandbox.expireContactTokens()
            #expect(try await bed.request("PUT", bed.devicePath("d") + "/push-token", json: ["provider": "fcm", "token": Tokens.fcm()]).status == 202)
            _ = try await bed.waitForState("d", "registered")
            let counts = try #require(await bed.sandbox.client(client)).counts
            #expect(counts.refreshes == 0, "another contact's refresh token is never used")
            #expect(counts.identifiedLinks == 2, "the login is linked again instead")
            #expect(await bed.sandbox.client(client)?.contact?.kind == .identified)
        }
    }

    @Test("H2/C7: emarsys.sdkVersion is sent as sdkVersion and X-EMARSYS-SDK-VERSION; the default is the bridge's version")
    func sdkVersion() async throws {
        try await withTestBed(configure: { $0.emarsys.sdkVersion = "3.11.0" }) { bed in
            let client = try await Self.register(bed, "d")
            #expect(await bed.sandbox.client(client)?.properties?.objectValue?["sdkVersion"]?.stringValue == "3.11.0")
            #expect(await Self.requests(bed, client: client).allSatisfy { $0.sdkVersion == "3.11.0" })
        }
        try await withTestBed { bed in
            let client = try await Self.register(bed, "d")
            #expect(await bed.sandbox.client(client)?.properties?.objectValue?["sdkVersion"]?.stringValue == PushbridgeVersion.current)
            #expect(await Self.requests(bed, client: client).allSatisfy { $0.sdkVersion == PushbridgeVersion.current })
        }
    }

    @Test("timeout: with the default emarsys.requestTimeoutSeconds (20 s, as Android's SDK) an ME answer after 12 s is taken, not retried")
    func requestTimeoutDefault() async throws {
        try await withTestBed(configure: { $0.emarsys.requestTimeoutSeconds = BridgeConfiguration().emarsys.requestTimeoutSeconds }) { bed in
            try await bed.addFault(["latencyMs": 12_000, "path": "/client/push-token", "method": "PUT", "count": 1])
            let client = try await Self.register(bed, "d")
            let puts = await Self.requests(bed, client: client).filter { $0.method == "PUT" }
            #expect(puts.count == 1, "the slow answer was read, not given up on and sent again")
            #expect(try await bed.status("d")["lastError"] is NSNull)
        }
    }

    @Test("K2: an OpenID login links the authenticated contact; the ID token is never in an answer")
    func openIdLogin() async throws {
        let idToken = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJvcGVuaWQtdXNlciJ9.c2lnbmF0dXJl"
        try await withTestBed { bed in
            let client = try await Self.register(bed, "d")
            let answer = try await bed.request("PUT", bed.devicePath("d") + "/contact", json: ["openIdToken": idToken, "fieldId": 7])
            #expect(answer.status == 202)
            let status = try await bed.waitForState("d", "registered")
            #expect((status["contact"] as? [String: Any])?["kind"] as? String == "identified")
            #expect((status["contact"] as? [String: Any])?["fieldId"] as? Int == 7)
            let contact = try #require(await bed.sandbox.client(client)?.contact)
            #expect(contact.kind == .identified && contact.fieldId == 7 && contact.fieldValue == nil)
            // The token goes out again after the login (K10, by contract).
            let counts = try #require(await bed.sandbox.client(client)).counts
            #expect(counts.identifiedLinks == 1)
            #expect(counts.pushTokenPuts == 2)
            let listing = try await bed.request("GET", "/v1/apps/\(Self.app)/devices")
            for body in [answer.body, listing.body, try await bed.request("GET", bed.devicePath("d")).body] {
                #expect(!String(decoding: body, as: UTF8.self).contains("c2lnbmF0dXJl"))
            }
            // A second OpenID login is never deduplicated and reaches ME: each ID token is a fresh authentication.
            let again = try await bed.request("PUT", bed.devicePath("d") + "/contact", json: ["openIdToken": idToken, "fieldId": 7])
            #expect(again.status == 202)
            _ = try await bed.waitForState("d", "registered")
            #expect(try #require(await bed.sandbox.client(client)).counts.identifiedLinks == 2)
            // The database files (the WAL included) hold it sealed only.
            let files = try FileManager.default.contentsOfDirectory(atPath: bed.directory).filter { $0.hasPrefix("bridge.sqlite") }
            #expect(!files.isEmpty)
            for name in files {
                let file = try Data(contentsOf: URL(fileURLWithPath: bed.directory + "/" + name))
                #expect(file.range(of: Data("c2lnbmF0dXJl".utf8)) == nil, "\(name)")
            }
        }
    }

    @Test("K2: fieldValue and openIdToken together, or neither, are 422 naming the field, and change nothing")
    func openIdBadInput() async throws {
        try await withTestBed { bed in
            try await Self.register(bed, "d")
            let both = try await bed.request("PUT", bed.devicePath("d") + "/contact", json: ["fieldValue": "x@example.com", "openIdToken": "a.b.c"])
            #expect(both.status == 422)
            #expect(both.json["field"] as? String == "openIdToken")
            let spaced = try await bed.request("PUT", bed.devicePath("d") + "/contact", json: ["openIdToken": "a b"])
            #expect(spaced.status == 422)
            #expect(spaced.json["field"] as? String == "openIdToken")
            let empty = try await bed.request("PUT", bed.devicePath("d") + "/contact", json: ["fieldValue": ""])
            #expect(empty.status == 422)
            #expect(empty.json["field"] as? String == "fieldValue")
            let neither = try await bed.request("PUT", bed.devicePath("d") + "/contact", json: ["fieldId": 3])
            #expect(neither.status == 422)
            #expect(neither.json["field"] as? String == "fieldValue")
            let start = try await bed.request("PUT", bed.devicePath("e"), json: ["provider": "fcm", "token": Tokens.fcm(), "contact": ["fieldValue": "x", "openIdToken": "a.b.c"]])
            #expect(start.status == 422)
            #expect(start.json["field"] as? String == "contact.openIdToken")
            #expect(try await bed.request("GET", bed.devicePath("e")).status == 404)
            #expect(try await bed.status("d")["pending"] as? Int == 0)
        }
    }

    @Test("E7: an event's sessionId is passed on to ME")
    func sessionId() async throws {
        try await withTestBed { bed in
            let client = try await Self.register(bed, "d")
            let answer = try await bed.request("POST", bed.devicePath("d") + "/events", json: ["events": [
                ["name": "with", "sessionId": "session-42"], ["name": "without"],
            ]])
            #expect(answer.status == 202)
            _ = try await bed.waitForState("d", "registered")
            let events = try #require(await bed.sandbox.client(client)).events.filter { $0.type == "custom" }
            #expect(events.map(\.name) == ["with", "without"])
            #expect(events.map(\.sessionId) == ["session-42", nil])
            let empty = try await bed.request("POST", bed.devicePath("d") + "/events", json: ["events": [["name": "e", "sessionId": ""]]])
            #expect(empty.status == 422)
            #expect(empty.json["field"] as? String == "events[0].sessionId")
        }
    }

    @Test("web push domain codes: apps[].clientPath domains sends the client service calls to /v3/domains/")
    func domainCodes() async throws {
        try await withTestBed(configure: { $0.apps = [.init(code: TestBed.app, clientPath: .domains)] }) { bed in
            let client = try await Self.register(bed, "web", provider: "chrome", token: Tokens.subscription(host: "fcm.googleapis.com", path: "/fcm/send/"))
            #expect(try await bed.request("DELETE", bed.devicePath("web") + "/push-token").status == 202)
            _ = try await bed.waitForState("web", "unregistered")
            let paths = await Self.requests(bed, client: client).map(\.path)
            let clientService = paths.filter { !$0.hasSuffix("/events") }
            #expect(clientService.count == 4)  // client, anonymous link, PUT, DELETE
            #expect(clientService.allSatisfy { $0.hasPrefix("/v3/domains/\(Self.app)/client") }, "\(paths)")
            // The web SDK's events go to the event service under /apps, whatever the client service path.
            #expect(paths.filter { $0.hasSuffix("/events") } == ["/v3/apps/\(Self.app)/client/events"])
        }
    }

    @Test("wrapper ids: an Expo push token or a UUID sent as an fcm, hms or apns token is refused, saying what to send")
    func wrapperIds() async throws {
        try await withTestBed { bed in
            for provider in ["fcm", "hms", "apns"] {
                for token in ["ExponentPushToken[xxxxxxxxxxxxxxxxxxxxxx]", "1b4e28ba-2fa1-11d2-883f-0016d3cca427"] {
                    let answer = try await bed.request("PUT", bed.devicePath("d") + "/push-token", json: ["provider": provider, "token": token])
                    #expect(answer.status == 422, "\(provider) \(token)")
                    #expect(answer.json["field"] as? String == "token")
                    let detail = answer.json["detail"] as? String ?? ""
                    #expect(detail.contains("native"), "\(detail)")
                    #expect(detail.contains(token.hasPrefix("Exponent") ? "Expo" : "OneSignal"), "\(detail)")
                }
            }
            #expect(try await bed.request("GET", bed.devicePath("d")).status == 404)
        }
    }
}
