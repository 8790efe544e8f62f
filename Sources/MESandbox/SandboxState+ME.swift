import Foundation
import Hummingbird

/// What a state transition needs from outside: the signer, the configuration and the clock reading.
struct MEEnvironment: Sendable {
    var signer: TokenSigner
    var configuration: SandboxConfiguration
    var now: Date
}

extension SandboxState {
    /// Handles one ME request end to end: observations (order, client state), the fault (if any), the
    /// operation itself, the new client state, and the log entries. Runs under the sandbox lock.
    mutating func respond(to request: MERequest, fault: SandboxFault?, environment: MEEnvironment) -> MEAnswer {
        let order = Self.parseRequestOrder(request.requestOrder)
        guard let clientId = request.clientId, !clientId.isEmpty else {
            var answer = faultAnswer(fault) ?? Self.failureAnswer(
                .badRequest("X-Client-Id header is required", field: "X-Client-Id"))
            answer.retryAfter = fault?.retryAfter
            answer.latencyMs = fault?.latencyMs
            appendLog(request, clientId: nil, order: order, status: answer, fault: fault != nil, at: environment.now)
            return answer
        }

        // Taken out of the dictionary, not copied: a copy would share the history buffers with the entry left
        // behind, and the first append would copy them whole (thousands of entries for a busy client, under
        // the lock). It goes back at the end; nothing in between looks it up.
        var client = clients.removeValue(forKey: clientId)
            ?? ClientRecord(clientId: clientId, appCode: request.appCode, historyCapacity: historyCapacity)
        client.appCode = request.appCode

        // Observations about the caller's discipline; they never reject a request.
        let echoedNewestState = client.newestClientState == nil || request.clientState == client.newestClientState
        if !echoedNewestState { client.counts.staleClientStates += 1 }
        if let order, let last = client.lastRequestOrder, order <= last { client.counts.orderViolations += 1 }

        var answer: MEAnswer
        if let injected = faultAnswer(fault) {
            // A fault answers instead of the backend: nothing about the client changes except its history.
            answer = injected
        } else {
            if let order { client.lastRequestOrder = order }
            do throws(MEFailure) {
                answer = try perform(request, on: &client, environment: environment)
            } catch {
                if error.status == .unauthorized { client.counts.unauthorized += 1 }
                answer = Self.failureAnswer(error)
            }
        }

        if !answer.closeConnection && fault?.mode != .noClientState {
            answer.clientState = issueClientState(for: &client, environment: environment)
        }
        answer.retryAfter = fault?.retryAfter
        answer.latencyMs = fault?.latencyMs

        client.requestCount += 1
        client.requests.append(SandboxClientRequest(
            method: request.method, path: request.path, requestOrder: order,
            status: answer.closeConnection ? 0 : answer.status.code, at: environment.now,
            sentClientState: echoedNewestState
        ))
        clients[clientId] = client
        appendLog(request, clientId: clientId, order: order, status: answer, fault: fault != nil, at: environment.now)
        return answer
    }

    /// The answer a fault imposes, or `nil` when the request must be handled normally
    /// (no fault, a latency-only fault, or "no-client-state").
    private func faultAnswer(_ fault: SandboxFault?) -> MEAnswer? {
        guard let fault else { return nil }
        switch fault.mode {
        case .status:
            guard let code = fault.status else { return nil }
            let status = HTTPResponse.Status(code: code)
            return MEAnswer(status: status, body: errorBody(status: status, message: "injected fault \(fault.id)", field: nil))
        case .close:
            return MEAnswer(status: .ok, body: nil, closeConnection: true)
        case .invalidJSON:
            return MEAnswer(status: .ok, body: Array(#"{"contactToken": "#.utf8))
        case .noClientState:
            return nil
        }
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
            status: answer.closeConnection ? 0 : answer.status.code, at: at, fault: fault
        ))
        nextLogSeq += 1
    }

    private func issueClientState(for client: inout ClientRecord, environment: MEEnvironment) -> String {
        client.clientStateSeq += 1
        let token = environment.signer.sign(ClientStatePayload(
            clientId: client.clientId, appCode: client.appCode, pushToken: client.pushToken, contact: client.contact,
            iat: Int(environment.now.timeIntervalSince1970), seq: client.clientStateSeq
        ))
        client.newestClientState = token
        return token
    }
}
