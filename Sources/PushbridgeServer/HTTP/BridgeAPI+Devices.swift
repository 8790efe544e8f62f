import Foundation
import HTTPTypes
import Hummingbird
import Storage
import Workflow

/// The device routes: a backend's writes (start, token, contact, events, forget) and reads (status, listing).
extension BridgeAPI {
    /// `PUT /v1/apps/{code}/devices/{deviceId}`: a device start.
    func start(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        let (app, key) = try target(request, context)
        let body = try await JSONInput.body(request)
        let start = try parsing.start(Members(body), app: app)
        return try await accept(.start(start), key: key, app: app, context: context)
    }

    /// `GET /v1/apps/{code}/devices/{deviceId}`: the device's status.
    func status(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        let (_, key) = try target(request, context)
        guard let device = try await storage("snapshot", { [store] in try await store.snapshot(of: key) }) else { throw Self.deviceNotFound(key) }
        return try Self.json(DeviceStatus(device), status: .ok)
    }

    /// `DELETE /v1/apps/{code}/devices/{deviceId}`: remove the token at ME, then forget the device.
    func forget(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        try await acceptWithoutBody(.forget, request, context)
    }

    /// `PUT .../push-token`: a new or rotated token.
    func setToken(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        let (app, key) = try target(request, context)
        let body = Members(try await JSONInput.body(request))
        let descriptor = try parsing.provider(body)
        let token = try parsing.token(body, provider: descriptor.id, required: true)!
        return try await accept(.setToken(token), key: key, app: app, context: context)
    }

    /// `DELETE .../push-token`: the token is gone (the user turned notifications off, say).
    func removeToken(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        try await acceptWithoutBody(.removeToken, request, context)
    }

    /// `PUT .../contact`: a login, by contact field value or by OpenID Connect ID token.
    func login(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        let (app, key) = try target(request, context)
        let body = try await JSONInput.body(request)
        switch try parsing.contact(Members(body), app: app) {
        case .identified(let fieldId, let value)?: return try await accept(.login(fieldId: fieldId, value: value), key: key, app: app, context: context)
        case .openId(let fieldId, let token)?: return try await accept(.openIdLogin(fieldId: fieldId, token: token), key: key, app: app, context: context)
        case .anonymous?, nil: throw Problem.invalid("fieldValue", "fieldValue is required.")
        }
    }

    /// `DELETE .../contact`: a logout (an anonymous contact).
    func logout(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        try await acceptWithoutBody(.logout, request, context)
    }

    /// `POST .../events`: custom events.
    func events(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        let (app, key) = try target(request, context)
        let body = try await JSONInput.body(request)
        let events = try parsing.events(body, now: Date())
        return try await accept(.events(events), key: key, app: app, context: context)
    }

    /// `GET /v1/apps/{code}/devices?state=&limit=&cursor=`: a page of statuses.
    func list(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        let app = try self.app(request, context)
        let query = request.uri.queryParameters
        let state = query["state"].map(String.init)
        if let state, DeviceStateName(rawValue: state) == nil {
            throw Problem.invalid("state", "state must be one of \(DeviceStateName.allCases.map(\.rawValue).joined(separator: ", ")).")
        }
        var limit = 100
        if let raw = query["limit"] {
            guard let n = Int(String(raw)), (1...1000).contains(n) else { throw Problem.invalid("limit", "limit must be a whole number from 1 to 1000.") }
            limit = n
        }
        let cursor = query["cursor"].map(String.init)
        if let cursor, !ListCursor.isValid(cursor) {
            throw Problem.invalid("cursor", "cursor must be a nextCursor value from an earlier page.")
        }
        let page = try await storage("list") { [store, app, limit] in try await store.list(app: app.code, state: state, limit: limit, after: cursor) }
        return try Self.json(DevicePageBody(devices: page.devices.map { DeviceStatus($0) }, nextCursor: page.nextCursor), status: .ok)
    }

    /// A write that takes no body (forget, token removal, logout): whatever was sent is read and dropped.
    private func acceptWithoutBody(_ write: DeviceWrite, _ request: Request, _ context: BasicRequestContext) async throws -> Response {
        let (app, key) = try target(request, context)
        try await JSONInput.drain(request)
        return try await accept(write, key: key, app: app, context: context)
    }
}
