import Crypto
import Foundation

/// The invariant oracle: what a request breaks, judged from what the caller sent, and the violation list.
extension SandboxState {
    /// One violation found in a request, before it gets its place in the list.
    struct Finding: Sendable {
        var kind: SandboxViolation.Kind
        var detail: String
    }

    // MARK: In-flight requests (I2: one request per client at a time)

    /// Called at handler entry, before the body is read. Returns whether another request of `clientId` was
    /// already in flight. Requests without a client id are not tracked.
    mutating func enterRequest(clientId: String?) -> Bool {
        guard let clientId, !clientId.isEmpty else { return false }
        let before = inFlight[clientId, default: 0]
        inFlight[clientId] = before + 1
        return before > 0
    }

    /// Called once per `enterRequest`: when the state decision is made, or when the handler leaves early.
    /// The time the sandbox then sleeps for a latency fault does not count as in flight.
    mutating func leaveRequest(clientId: String?) {
        guard let clientId, !clientId.isEmpty, let count = inFlight[clientId] else { return }
        inFlight[clientId] = count > 1 ? count - 1 : nil
    }

    // MARK: Checks

    /// Everything `request` breaks, in a fixed order (the first one names a strict-mode 409). Runs before the
    /// request changes anything; `client` is the client's record as it was before this request.
    func findings(in request: MERequest, client: ClientRecord, order: Int64?) -> [Finding] {
        var findings: [Finding] = []

        // I1: the token must not be held by another client of the same app code.
        if request.route == .setPushToken,
           let token = SandboxJSON.parse(request.body)?.objectValue?["pushToken"]?.stringValue, !token.isEmpty {
            let holders = (pushTokenHolders[PushTokenKey(appCode: request.appCode, token: token)] ?? [])
                .subtracting([client.clientId]).sorted()
            if !holders.isEmpty {
                let names = holders.prefix(5).joined(separator: ", ") + (holders.count > 5 ? ", ..." : "")
                findings.append(Finding(kind: .tokenOnTwoClients, detail:
                    "push token \(Self.tokenReference(token)) is already held by client\(holders.count > 1 ? "s" : "") "
                    + "\(names) of app \(request.appCode)"))
            }
        }

        // I2: one request at a time, increasing order, newest client state echoed.
        if request.overlapping {
            findings.append(Finding(kind: .overlappingRequest,
                detail: "another request of this client was still in flight when this one arrived"))
        }
        if let order, let last = client.lastRequestOrder, order <= last {
            findings.append(Finding(kind: .requestOrderNotIncreasing,
                detail: "X-Request-Order \(order) is not greater than the previous one, \(last)"))
        }
        if !client.echoesNewestState(request) {
            findings.append(Finding(kind: .staleClientState,
                detail: Self.staleDetail(sent: request.clientState, newestSeq: client.clientStateSeq, clientId: client.clientId)))
        }

        // Headers the SDKs always send.
        var missing: [String] = []
        if Self.isBlank(request.requestOrder) { missing.append("X-Request-Order") }
        if Self.isBlank(request.sdkVersion) { missing.append("X-EMARSYS-SDK-VERSION") }
        if Self.isBlank(request.sdkMode) { missing.append("X-EMARSYS-SDK-MODE") }
        let carriesContactToken = !Self.isBlank(request.contactToken)
        switch request.route {
        case .setPushToken, .deletePushToken, .events:
            if !carriesContactToken { missing.append("X-Contact-Token") }
        case .registerClient, .linkContact, .refreshContactToken:
            break
        }
        if !missing.isEmpty {
            findings.append(Finding(kind: .missingHeader, detail: "missing " + missing.joined(separator: ", ")))
        }

        // Bodies the mobile SDKs always shape so (sdk-parity.md C6, E9).
        if request.route == .registerClient, let body = SandboxJSON.parse(request.body)?.objectValue,
           let platform = body["platform"]?.stringValue, Self.mobilePlatforms.contains(platform),
           body["pushSettings"] == nil || body["pushSettings"] == .null {
            findings.append(Finding(kind: .missingPushSettings,
                detail: "POST /client for platform \(platform) without pushSettings; the mobile SDKs always send it"))
        }
        if request.isEventsV4, client.counts.deviceEventStates > 0, let newest = client.eventStates.last {
            let sent = SandboxJSON.parse(request.body)?.objectValue?["deviceEventState"]
            // The states' sequence numbers say which one went out (they are the sandbox's own, not secrets).
            func number(_ state: SandboxJSON?) -> String {
                state.map { "#" + String(describing: $0.objectValue?["seq"]?.intValue ?? 0) } ?? "none"
            }
            let held = client.eventStates.map { number($0.state) }.joined(separator: ", ")
            let which = "(sent \(number(sent)), newest \(number(newest.state)), may hold \(held))"
            if let index = client.eventStates.firstIndex(where: { $0.state == sent }), sent != newest.state {
                // An older one the caller may hold: the answers after it went unread. Expected on a retry of the
                // same call (a timeout, a crash before its commit) and when one of those answers was delayed by a
                // latency fault; otherwise an answer read and then lost (what a kill leaves behind; the
                // end-to-end simulation bounds them by kills).
                let unread = client.previousCall == request.call
                    || client.eventStates[(index + 1)...].contains(where: \.delayed)
                if !unread {
                    findings.append(Finding(kind: .staleDeviceEventState, detail:
                        "v4 events request with an older deviceEventState than the newest, after another call \(which)"))
                }
            } else if sent != newest.state {
                findings.append(Finding(kind: .deviceEventStateNotEchoed, detail: sent == nil
                    ? "v4 events request without the deviceEventState the last events answer carried \(which)"
                    : "v4 events request with a deviceEventState this client cannot hold \(which)"))
            }
        }

        // X-Contact-Token where the SDKs send none. sdk-parity.md H7/K4/R3: both SDKs leave it out on URLs ending
        // in `client/contact` or `/contact-token`, so on the identified link and the refresh. The anonymous link
        // (`?anonymous=true`, same path) and `POST /client` do carry it in the SDKs when one is stored, so it is
        // allowed there.
        if carriesContactToken {
            if request.route == .linkContact, !request.anonymous {
                findings.append(Finding(kind: .unexpectedContactToken,
                    detail: "X-Contact-Token on the identified contact link; the SDKs send none there"))
            } else if request.route == .refreshContactToken {
                findings.append(Finding(kind: .unexpectedContactToken,
                    detail: "X-Contact-Token on the contact token refresh; the SDKs send none there"))
            }
        }
        return findings
    }

    static let mobilePlatforms: Set<String> = ["android", "android-huawei", "ios"]

    private static func isBlank(_ value: String?) -> Bool {
        value?.isEmpty ?? true
    }

    /// Names a token without revealing it: `sha256:` and the first 12 hex digits of its SHA-256.
    static func tokenReference(_ token: String) -> String {
        let digest = SHA256.hash(data: Data(token.utf8))
        return "sha256:" + digest.prefix(6).map { byte in
            let hex = String(byte, radix: 16)
            return byte < 16 ? "0" + hex : hex
        }.joined()
    }

    /// Says which client state was sent, by its sequence number only (a client state holds the push token).
    private static func staleDetail(sent: String?, newestSeq: Int, clientId: String) -> String {
        guard let sent, !sent.isEmpty else {
            return "X-Client-State missing; the newest one sent to this client is #\(newestSeq)"
        }
        if let payload = clientStatePayload(sent), let seq = payload["seq"]?.intValue {
            if let owner = payload["clientId"]?.stringValue, owner != clientId {
                return "X-Client-State #\(seq) of client \(owner), not the newest one sent to this client (#\(newestSeq))"
            }
            return "X-Client-State #\(seq) is not the newest one sent to this client (#\(newestSeq))"
        }
        return "X-Client-State is not one the sandbox sent; the newest one sent to this client is #\(newestSeq)"
    }

    /// The payload of a JWT-shaped client state, unverified (only read for the message).
    private static func clientStatePayload(_ token: String) -> [String: SandboxJSON]? {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3 else { return nil }
        var base64 = parts[1].replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        guard let data = Data(base64Encoded: base64) else { return nil }
        return SandboxJSON.parse(Array(data))?.objectValue
    }

    // MARK: The list

    mutating func record(_ findings: [Finding], request: MERequest, clientId: String, at: Date) {
        for finding in findings {
            violationCount += 1
            violations.append(SandboxViolation(
                seq: violationCount, kind: finding.kind.rawValue, clientId: clientId, appCode: request.appCode,
                method: request.method, path: request.path, detail: finding.detail, at: at,
                requestSeq: nextLogSeq  // the log entry this request gets once answered
            ))
        }
    }

    mutating func clearViolations() {
        violations = RingBuffer(capacity: historyCapacity)
        violationCount = 0
    }

    func violationList(clientId: String?, kind: String?) -> [SandboxViolation] {
        var list = violations.elements
        if let clientId { list = list.filter { $0.clientId == clientId } }
        if let kind { list = list.filter { $0.kind == kind } }
        return list
    }

    /// Keeps `pushTokenHolders` in step with a client whose app code or push token may have changed.
    mutating func updatePushTokenIndex(clientId: String, from old: PushTokenKey?, to new: PushTokenKey?) {
        guard old != new else { return }
        if let old, var holders = pushTokenHolders[old] {
            holders.remove(clientId)
            pushTokenHolders[old] = holders.isEmpty ? nil : holders
        }
        if let new { pushTokenHolders[new, default: []].insert(clientId) }
    }
}

extension ClientRecord {
    /// The index key of the push token this client holds, if any.
    var pushTokenKey: PushTokenKey? {
        pushToken.map { PushTokenKey(appCode: appCode, token: $0) }
    }
}
