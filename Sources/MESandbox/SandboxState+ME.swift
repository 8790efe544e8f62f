import Foundation
import Hummingbird

/// What a state transition needs from outside: the signer, the configuration and the clock reading.
struct MEEnvironment: Sendable {
    var signer: TokenSigner
    var configuration: SandboxConfiguration
    var now: Date
}

extension SandboxState {
    /// Handles one ME request end to end: the invariant checks (recorded as violations; in strict mode they
    /// answer 409), the fault (if any, consumed here), the operation itself, the new client state, and the log
    /// entries. Runs under the sandbox lock.
    mutating func respond(to request: MERequest, environment: MEEnvironment) -> MEAnswer {
        let order = Self.parseRequestOrder(request.requestOrder)
        guard let clientId = request.clientId, !clientId.isEmpty else {
            let fault = faults.consume(method: request.method, path: request.path, clientId: request.clientId)
            var answer = faultAnswer(fault) ?? Self.failureAnswer(
                .badRequest("X-Client-Id header is required", field: "X-Client-Id"))
            answer.retryAfter = fault?.retryAfter
            answer.latencyMs = fault?.latencyMs
            answer.faultId = fault?.id
            appendLog(request, clientId: nil, order: order, status: answer, fault: fault != nil, at: environment.now)
            return answer
        }

        // Taken out of the dictionary, not copied: a copy would share the history buffers with the entry left
        // behind, and the first append would copy them whole (thousands of entries for a busy client, under
        // the lock). It goes back at the end; nothing in between looks it up.
        var client = clients.removeValue(forKey: clientId)
            ?? ClientRecord(clientId: clientId, appCode: request.appCode, historyCapacity: historyCapacity)
        let heldBefore = client.pushTokenKey

        // What the caller sent, judged before anything changes (faulted requests included), when the bridge's
        // invariants apply to it: an SDK is judged by the ME rules alone (its answers below).
        let findings = request.checksInvariants ? findings(in: request, client: client, order: order) : []
        record(findings, request: request, clientId: clientId, at: environment.now)
        client.noteDeviceEventState(of: request)
        let echoedNewestState = client.echoesNewestState(request)
        if request.checksInvariants {
            if !echoedNewestState { client.counts.staleClientStates += 1 }
            if let order, let last = client.lastRequestOrder, order <= last { client.counts.orderViolations += 1 }
        }
        // Every request seen moves the order on, whatever its answer: a replay must carry a new value.
        if let order { client.lastRequestOrder = order }

        var answer: MEAnswer
        var fault: SandboxFault?
        if strict, let first = findings.first {
            // Refused before the backend or a fault sees it: no fault count used, no state changed, no new
            // client state (the caller keeps the newest one it has).
            let status = HTTPResponse.Status.conflict
            answer = MEAnswer(status: status, body: errorBody(
                status: status, message: "invariant violation: \(first.kind.rawValue): \(first.detail)", field: nil))
        } else {
            client.appCode = request.appCode
            fault = faults.consume(method: request.method, path: request.path, clientId: clientId)
            if let injected = faultAnswer(fault) {
                // A fault answers instead of the backend: nothing about the client changes except its history.
                answer = injected
            } else {
                let eventStatesBefore = client.eventStates.count
                do throws(MEFailure) {
                    answer = try perform(request, on: &client, environment: environment, omitRefreshToken: fault?.mode == .noRefreshToken)
                    if client.eventStates.count > eventStatesBefore {
                        client.eventStates[client.eventStates.count - 1].delayed = (fault?.latencyMs ?? 0) > 0
                    }
                } catch {
                    if error.status == .unauthorized { client.counts.unauthorized += 1 }
                    answer = Self.failureAnswer(error)
                }
            }
            // Only an answer that goes out carries a client state, so "newest issued" is the newest one sent.
            if !answer.closeConnection && fault?.mode != .noClientState {
                let before = client.newestClientState
                answer.clientState = issueClientState(for: &client, environment: environment)
                client.newestMayBeUnread = (fault?.latencyMs ?? 0) > 0
                client.stateBeforeNewest = before
            }
            answer.retryAfter = fault?.retryAfter
            answer.latencyMs = fault?.latencyMs
            answer.faultId = fault?.id
        }

        client.requestCount += 1
        client.previousCall = request.call
        client.requests.append(SandboxClientRequest(
            method: request.method, path: request.path, requestOrder: order,
            status: answer.closeConnection ? 0 : answer.status.code, at: environment.now,
            sentClientState: echoedNewestState
        ))
        updatePushTokenIndex(clientId: clientId, from: heldBefore, to: client.pushTokenKey)
        clients[clientId] = client
        appendLog(request, clientId: clientId, order: order, status: answer, fault: fault != nil, at: environment.now)
        return answer
    }

    /// The answer a fault imposes, or `nil` when the request must be handled normally
    /// (no fault, a latency-only fault, "no-client-state" or "no-refresh-token").
    private func faultAnswer(_ fault: SandboxFault?) -> MEAnswer? {
        guard let fault else { return nil }
        switch fault.mode {
        case .status:
            guard let code = fault.status else { return nil }
            let status = HTTPResponse.Status(code: code)
            switch fault.body ?? .json {
            case .json:
                return MEAnswer(status: status, body: errorBody(status: status, message: "injected fault \(fault.id)", field: nil, code: fault.code))
            case .empty:
                return MEAnswer(status: status, body: nil)
            case .html:
                return MEAnswer(status: status, body: Self.proxyPage(status), contentType: "text/html")
            }
        case .close:
            return MEAnswer(status: .ok, body: nil, closeConnection: true)
        case .invalidJSON:
            return MEAnswer(status: .ok, body: Array(#"{"contactToken": "#.utf8))
        case .noClientState, .noRefreshToken:
            return nil
        }
    }

    /// The page a proxy in front of a backend answers with (nginx's shape).
    static func proxyPage(_ status: HTTPResponse.Status) -> [UInt8] {
        let phrases = [403: "Forbidden", 429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
                       503: "Service Temporarily Unavailable", 504: "Gateway Time-out"]
        let title = "\(status.code) \(phrases[status.code] ?? (status.reasonPhrase.isEmpty ? "Error" : status.reasonPhrase))"
        return Array("<html>\r\n<head><title>\(title)</title></head>\r\n<body>\r\n<center><h1>\(title)</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n".utf8)
    }

    private static func failureAnswer(_ failure: MEFailure) -> MEAnswer {
        MEAnswer(status: failure.status, body: errorBody(status: failure.status, message: failure.message, field: failure.field))
    }

    /// Decimal epoch milliseconds, digits only.
    static func parseRequestOrder(_ raw: String?) -> Int64? {
        guard let raw, !raw.isEmpty, raw.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return nil }
        return Int64(raw)
    }

    private mutating func appendLog(
        _ request: MERequest, clientId: String?, order: Int64?, status answer: MEAnswer, fault: Bool, at: Date
    ) {
        log.append(SandboxRequestRecord(
            seq: nextLogSeq, method: request.method, path: request.path, clientId: clientId, requestOrder: order,
            status: answer.closeConnection ? 0 : answer.status.code, at: at, fault: fault,
            contactToken: !(request.contactToken ?? "").isEmpty, sdkVersion: request.sdkVersion,
            route: request.route.rawValue, invariantsChecked: request.checksInvariants, origin: request.origin
        ))
        nextLogSeq += 1
    }

    /// Logs a request that never reached `respond` with the status it was answered: one no ME route serves, a CORS
    /// preflight (`route` nil), or an ME request whose body was too large.
    mutating func logUnrouted(_ request: UnroutedRequest, route: MERoute? = nil, status: Int, invariantsChecked: Bool = false, at: Date) {
        log.append(SandboxRequestRecord(
            seq: nextLogSeq, method: request.method, path: request.path, clientId: request.clientId,
            requestOrder: Self.parseRequestOrder(request.requestOrder), status: status, at: at, fault: false,
            contactToken: request.carriesContactToken, sdkVersion: request.sdkVersion,
            route: route?.rawValue, invariantsChecked: invariantsChecked, origin: request.origin
        ))
        nextLogSeq += 1
    }

    private func issueClientState(for client: inout ClientRecord, environment: MEEnvironment) -> String {
        client.clientStateSeq += 1
        let token = environment.signer.sign(ClientStatePayload(
            clientId: client.clientId, appCode: client.appCode, pushToken: client.pushToken, contact: client.contact,
            properties: client.properties?.objectValue ?? [:], iat: Int(environment.now.timeIntervalSince1970),
            seq: client.clientStateSeq
        ))
        client.newestClientState = token
        return token
    }
}
