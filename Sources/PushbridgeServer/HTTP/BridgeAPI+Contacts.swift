import Foundation
import Hummingbird
import PushbridgeConfig
import Storage
import Workflow

/// Operations on a person rather than a device: the devices whose newest requested contact is one contact, found by
/// the keyed hash each device keeps (`Storage/Contacts.swift`). The contact value comes in the body, never in a URL, and
/// is never logged.
extension BridgeAPI {
    /// At most this many devices per contact and request: a person with more is almost surely a shared test account.
    static let maxContactDevices = 10_000

    /// `POST /v1/apps/{code}/contacts/devices`: 200 `{"devices": [<status>]}`.
    func contactDevices(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        let (_, _, devices) = try await contactsDevices(request, context)
        return try Self.json(ContactDevicesBody(devices: devices.map { DeviceStatus($0) }), status: .ok)
    }

    /// `POST /v1/apps/{code}/contacts/logout`: each of the contact's devices is logged out (an anonymous contact); 202
    /// `{"devices": [<status>]}` as the logouts leave them.
    func contactLogout(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        try await forEachDevice(request, context, write: .logout, action: "logout")
    }

    /// `POST /v1/apps/{code}/contacts/erase`: each of the contact's devices is forgotten as by `DELETE` (its token is
    /// removed at ME first); 202 `{"devices": [<status>]}`.
    func contactErase(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        try await forEachDevice(request, context, write: .forget, action: "erase")
    }

    /// Writes `write` for each of the contact's devices, one device at a time, each in its own transaction as the
    /// device's own route would, and only while the device is still the contact's (checked under the write's locks: a
    /// device that a login of someone else overtook is left out, as is one gone meanwhile). Over the queue bound, or
    /// when the instance begins to drain, the request stops: the devices written so far are no longer the contact's, so
    /// the same request sent again goes on with the rest.
    private func forEachDevice(_ request: Request, _ context: BasicRequestContext, write: DeviceWrite, action: String) async throws -> Response {
        let (app, contact, devices) = try await contactsDevices(request, context)
        try refuseWhileDraining()
        var statuses: [DeviceStatus] = []
        for device in devices {
            if draining() {
                var p = Problem(
                    .serviceUnavailable, "shutting-down", "Shutting down",
                    detail: "This instance began shutting down after \(statuses.count) of the contact's \(devices.count) devices; send the same request again (to another instance) for the rest.")
                p.headers[.retryAfter] = "1"
                throw p
            }
            switch try await storeWrite(write, key: device.registration.key, app: app, context: context, contact: contact) {
            case .accepted(let after): statuses.append(DeviceStatus(after, deduplicated: false))
            case .deduplicated(let after): statuses.append(DeviceStatus(after, deduplicated: true))
            case .unknownDevice: continue
            case .queueFull(let scope): throw Self.queueFull(scope: scope)
            }
        }
        logger.info("contact's devices written", metadata: ["app": "\(app.code)", "action": "\(action)", "devices": "\(statuses.count)"])
        return try Self.json(ContactDevicesBody(devices: statuses), status: .accepted)
    }

    /// The app and the devices of the contact the body names: `{"fieldValue", "fieldId"?}` (default the app's
    /// `contactFieldId`).
    private func contactsDevices(
        _ request: Request, _ context: BasicRequestContext
    ) async throws -> (BridgeConfiguration.App, (fieldId: Int, value: String), [DeviceSnapshot]) {
        let app = try self.app(request, context)
        let body = Members(try await JSONInput.body(request))
        guard let value = try body.string("fieldValue", required: true, maxLength: 1024) else {
            throw Problem.invalid("fieldValue", "fieldValue is required.")
        }
        let fieldId = try body.int("fieldId", min: 1, max: Int64(Int32.max)) ?? app.contactFieldId
        let limit = Self.maxContactDevices
        let devices = try await storage("contact_devices") { [store] in
            try await store.devices(ofContact: fieldId, value: value, app: app.code, limit: limit + 1)
        }
        guard devices.count <= limit else {
            throw Problem.invalid("fieldValue", "The contact has more than \(limit) devices; nothing was changed.")
        }
        return (app, (fieldId, value), devices)
    }
}

struct ContactDevicesBody: Encodable {
    var devices: [DeviceStatus]
}
