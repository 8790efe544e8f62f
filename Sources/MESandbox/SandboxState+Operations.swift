import Foundation
import Hummingbird

/// The ME operations proper: what each endpoint checks, changes and answers.
extension SandboxState {
    mutating func perform(
        _ request: MERequest, on client: inout ClientRecord, environment: MEEnvironment, omitRefreshToken: Bool = false
    ) throws(MEFailure) -> MEAnswer {
        guard request.requestOrder != nil else {
            throw .badRequest("X-Request-Order header is required", field: "X-Request-Order")
        }
        guard Self.parseRequestOrder(request.requestOrder) != nil else {
            throw .badRequest("X-Request-Order must be decimal epoch milliseconds", field: "X-Request-Order")
        }
        guard Self.isValidAppCode(request.appCode) else {
            throw .badRequest("application code must match [A-Za-z0-9-]+", field: "code")
        }

        switch request.route {
        case .registerClient:
            let body = try BodyValidation.requiredObject(request.body)
            client.platform = try BodyValidation.deviceInfo(body)
            client.properties = .object(body)
            client.registeredAppCode = request.appCode
            client.counts.client += 1
            return MEAnswer(status: .noContent)

        case .linkContact:
            guard client.registeredAppCode == request.appCode else {
                throw .badRequest("client not registered: POST /client first", field: "X-Client-Id")
            }
            let contact: SandboxContact
            if request.anonymous {
                _ = try BodyValidation.object(request.body)
                contact = SandboxContact(kind: .anonymous)
            } else {
                contact = try BodyValidation.identifiedContact(try BodyValidation.requiredObject(request.body))
            }
            let tokens = link(contact, client: &client, appCode: request.appCode, environment: environment, omitRefreshToken: omitRefreshToken)
            if request.anonymous { client.counts.anonymousLinks += 1 } else { client.counts.identifiedLinks += 1 }
            return MEAnswer(status: .ok, body: SandboxHTTP.encode(tokens))

        case .refreshContactToken:
            let body = try BodyValidation.requiredObject(request.body)
            let refreshToken = try BodyValidation.nonEmptyString(body, "refreshToken")
            guard let record = refreshTokens[refreshToken] else { throw .unauthorized("unknown refresh token") }
            guard !record.revoked else { throw .unauthorized("refresh token revoked") }
            guard record.clientId == client.clientId, record.appCode == request.appCode else {
                throw .unauthorized("refresh token belongs to another client")
            }
            pruneExpiredContactTokens(of: &client, now: environment.now)
            let token = issueContactToken(
                client: &client, appCode: request.appCode, contact: record.contact, environment: environment)
            client.counts.refreshes += 1
            return MEAnswer(status: .ok, body: SandboxHTTP.encode(["contactToken": token]))

        case .setPushToken:
            try authorize(request, client: client, now: environment.now)
            let body = try BodyValidation.requiredObject(request.body)
            client.pushToken = try BodyValidation.nonEmptyString(body, "pushToken")
            client.counts.pushTokenPuts += 1
            return MEAnswer(status: .noContent)

        case .deletePushToken:
            try authorize(request, client: client, now: environment.now)
            _ = try BodyValidation.object(request.body)
            client.pushToken = nil
            client.counts.pushTokenDeletes += 1
            return MEAnswer(status: .noContent)

        case .events:
            try authorize(request, client: client, now: environment.now)
            let events = try BodyValidation.events(try BodyValidation.requiredObject(request.body))
            for event in events { client.events.append(event) }
            client.counts.eventRequests += 1
            // v4 answers carry a new `deviceEventState` every other request, which the next v4 events request
            // must echo (`findings` checks it); between them the client keeps the one it has, as the SDKs do.
            guard request.isEventsV4, client.counts.eventRequests % 2 == 1 else { return MEAnswer(status: .noContent) }
            client.counts.deviceEventStates += 1
            let eventState = SandboxJSON.object([
                "seq": .int(client.counts.deviceEventStates), "id": .string(TokenSigner.randomOpaqueToken(byteCount: 9)),
            ])
            client.eventStates.append(IssuedEventState(state: eventState, delayed: false))
            return MEAnswer(status: .ok, body: SandboxHTTP.encode(SandboxJSON.object(["deviceEventState": eventState])))
        }
    }

    static func isValidAppCode(_ code: String) -> Bool {
        !code.isEmpty && code.utf8.allSatisfy { byte in
            (48...57).contains(byte) || (65...90).contains(byte) || (97...122).contains(byte) || byte == 45
        }
    }

    /// Checks `X-Contact-Token`: it must be one the sandbox issued to this client and app code, and still live.
    private func authorize(_ request: MERequest, client: ClientRecord, now: Date) throws(MEFailure) {
        guard let token = request.contactToken, !token.isEmpty else {
            throw .unauthorized("X-Contact-Token header is required")
        }
        guard let record = contactTokens[token] else { throw .unauthorized("unknown or superseded contact token") }
        guard record.clientId == client.clientId, record.appCode == request.appCode else {
            throw .unauthorized("contact token belongs to another client")
        }
        guard !record.forcedExpired, now < record.expiresAt else { throw .unauthorized("contact token expired") }
    }

    /// Links `contact` to the client. The previous link's tokens stop working, as a new login makes them
    /// meaningless; a bridge that keeps using them is caught by a 401.
    /// With `omitRefreshToken` (fault mode "no-refresh-token") the answer leaves out the refresh token and the
    /// client's refresh tokens stay valid, now for the new contact.
    private mutating func link(
        _ contact: SandboxContact, client: inout ClientRecord, appCode: String, environment: MEEnvironment,
        omitRefreshToken: Bool = false
    ) -> [String: String] {
        for token in client.contactTokens { contactTokens[token] = nil }
        client.contactTokens = []
        client.contact = contact
        client.linkReference = TokenSigner.randomOpaqueToken(byteCount: 12)
        if omitRefreshToken {
            for token in client.refreshTokens { refreshTokens[token]?.contact = contact }
            return ["contactToken": issueContactToken(client: &client, appCode: appCode, contact: contact, environment: environment)]
        }
        for token in client.refreshTokens { refreshTokens[token] = nil }
        client.refreshTokens = []

        let contactToken = issueContactToken(client: &client, appCode: appCode, contact: contact, environment: environment)
        let refreshToken = TokenSigner.randomOpaqueToken()
        refreshTokens[refreshToken] = RefreshTokenRecord(clientId: client.clientId, appCode: appCode, contact: contact)
        client.refreshTokens.append(refreshToken)
        return ["contactToken": contactToken, "refreshToken": refreshToken]
    }

    private mutating func issueContactToken(
        client: inout ClientRecord, appCode: String, contact: SandboxContact, environment: MEEnvironment
    ) -> String {
        let expiresAt = environment.now.addingTimeInterval(environment.configuration.contactTokenLifetime.timeInterval)
        let token = environment.signer.sign(ContactTokenPayload(
            clientId: client.clientId, appCode: appCode, contact: contact, anonymousReference: client.linkReference,
            exp: Int(expiresAt.timeIntervalSince1970.rounded(.up)), jti: TokenSigner.randomOpaqueToken(byteCount: 9)
        ))
        contactTokens[token] = ContactTokenRecord(clientId: client.clientId, appCode: appCode, contact: contact, expiresAt: expiresAt)
        client.contactTokens.append(token)
        return token
    }

    /// Forgets this client's dead contact tokens, so a long run of refreshes does not grow memory.
    private mutating func pruneExpiredContactTokens(of client: inout ClientRecord, now: Date) {
        client.contactTokens.removeAll { token in
            guard let record = contactTokens[token] else { return true }
            if record.forcedExpired || now >= record.expiresAt {
                contactTokens[token] = nil
                return true
            }
            return false
        }
    }
}
