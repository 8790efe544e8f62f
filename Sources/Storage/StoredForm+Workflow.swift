import Foundation
import MobileEngage
import Workflow

/// The workflow's types in `StoredForm`: each writes its fields in declaration order, and reads what the
/// version it was written in had (a field appended since reads as its default).
extension TokenRef: StoredCodable {
    public func write(to w: inout StoredWriter) {
        provider.write(to: &w)
        platform.write(to: &w)
        pushToken.write(to: &w)
        tokenHash.write(to: &w)
    }
    public init(from r: inout StoredReader) throws {
        self.init(provider: try r.string(), platform: try r.string(), pushToken: try r.string(), tokenHash: try r.string())
    }
}

extension ContactRequest: StoredCodable {
    public func write(to w: inout StoredWriter) {
        switch self {
        case .anonymous: w.bytes.append(0)
        case .identified(let fieldId, let value):
            w.bytes.append(1)
            fieldId.write(to: &w)
            value.write(to: &w)
        case .openId(let fieldId, let token):
            w.bytes.append(2)
            fieldId.write(to: &w)
            token.write(to: &w)
        }
    }
    public init(from r: inout StoredReader) throws {
        switch try r.byte() {
        case 0: self = .anonymous
        case 1: self = .identified(fieldId: try Int(from: &r), value: try r.string())
        case 2: self = .openId(fieldId: try Int(from: &r), token: try r.string())
        default: throw StoredFormError.malformed("contact")
        }
    }
}

extension MEJSON: StoredCodable {
    public func write(to w: inout StoredWriter) {
        switch self {
        case .string(let s):
            w.bytes.append(0)
            s.write(to: &w)
        case .bool(let b):
            w.bytes.append(1)
            b.write(to: &w)
        case .number(let n):
            w.bytes.append(2)
            n.write(to: &w)
        case .array(let a):
            w.bytes.append(3)
            a.write(to: &w)
        case .object(let o):
            w.bytes.append(4)
            o.write(to: &w)
        case .null:
            w.bytes.append(5)
        }
    }
    public init(from r: inout StoredReader) throws {
        switch try r.byte() {
        case 0: self = .string(try r.string())
        case 1: self = .bool(try Bool(from: &r))
        case 2: self = .number(try Double(from: &r))
        case 3: self = .array(try [MEJSON](from: &r))
        case 4: self = .object(try [String: MEJSON](from: &r))
        case 5: self = .null
        default: throw StoredFormError.malformed("push setting")
        }
    }
}

extension DeviceInfo: StoredCodable {
    public func write(to w: inout StoredWriter) {
        applicationVersion.write(to: &w)
        deviceModel.write(to: &w)
        osVersion.write(to: &w)
        language.write(to: &w)
        timezone.write(to: &w)
        pushSettings.write(to: &w)
    }
    public init(from r: inout StoredReader) throws {
        self.init(
            applicationVersion: try String?(from: &r), deviceModel: try String?(from: &r), osVersion: try String?(from: &r),
            language: try String?(from: &r), timezone: try String?(from: &r), pushSettings: try [String: MEJSON]?(from: &r))
    }
}

extension StepTimes: StoredCodable {
    public func write(to w: inout StoredWriter) {
        clientAt.write(to: &w)
        contactAt.write(to: &w)
        pushTokenAt.write(to: &w)
    }
    public init(from r: inout StoredReader) throws {
        self.init(clientAt: try Date?(from: &r), contactAt: try Date?(from: &r), pushTokenAt: try Date?(from: &r))
    }
}

extension LastError: StoredCodable {
    public func write(to w: inout StoredWriter) {
        step.write(to: &w)
        status.write(to: &w)
        message.write(to: &w)
        attempts.write(to: &w)
        at.write(to: &w)
        nextAttemptAt.write(to: &w)
    }
    public init(from r: inout StoredReader) throws {
        self.init(
            step: try r.string(), status: try Int?(from: &r), message: try r.string(), attempts: try Int(from: &r), at: try Date(from: &r),
            nextAttemptAt: try Date?(from: &r))
    }
}

extension DeviceState: StoredCodable {
    public func write(to w: inout StoredWriter) {
        clientId.write(to: &w)
        clientState.write(to: &w)
        contactToken.write(to: &w)
        refreshToken.write(to: &w)
        linkedContact.write(to: &w)
        deviceInfoHashSent.write(to: &w)
        pushTokenSent.write(to: &w)
        resendPushToken.write(to: &w)
        lastRequestOrder.write(to: &w)
        platform.write(to: &w)
        info.write(to: &w)
        wantedContact.write(to: &w)
        wantedToken.write(to: &w)
        attempts.write(to: &w)
        refreshCycles.write(to: &w)
        needsRefresh.write(to: &w)
        relinked.write(to: &w)
        failed.write(to: &w)
        waitingFor.write(to: &w)
        lastError.write(to: &w)
        steps.write(to: &w)
        pushTokenUncertain.write(to: &w)  // version 2
        deviceEventState.write(to: &w)  // version 3
    }
    public init(from r: inout StoredReader) throws {
        self.init(clientId: try r.string(), platform: "")
        clientState = try String?(from: &r)
        contactToken = try String?(from: &r)
        refreshToken = try String?(from: &r)
        linkedContact = try ContactRequest?(from: &r)
        deviceInfoHashSent = try String?(from: &r)
        pushTokenSent = try TokenRef?(from: &r)
        resendPushToken = try Bool(from: &r)
        lastRequestOrder = try Int64(from: &r)
        platform = try r.string()
        info = try DeviceInfo(from: &r)
        wantedContact = try ContactRequest?(from: &r)
        wantedToken = try TokenRef?(from: &r)
        attempts = try Int(from: &r)
        refreshCycles = try Int(from: &r)
        needsRefresh = try Bool(from: &r)
        relinked = try Bool(from: &r)
        failed = try Bool(from: &r)
        waitingFor = try String?(from: &r)
        lastError = try LastError?(from: &r)
        steps = try StepTimes(from: &r)
        pushTokenUncertain = r.version >= 2 ? try TokenRef?(from: &r) : nil
        deviceEventState = r.version >= 3 ? try MEJSON?(from: &r) : nil
    }
}

extension CustomEvent: StoredCodable {
    public func write(to w: inout StoredWriter) {
        name.write(to: &w)
        timestamp.write(to: &w)
        attributes.write(to: &w)
        sessionId.write(to: &w)  // version 3
    }
    public init(from r: inout StoredReader) throws {
        self.init(
            name: try r.string(), timestamp: try r.string(), attributes: try [String: String]?(from: &r),
            sessionId: r.version >= 3 ? try String?(from: &r) : nil)
    }
}

extension StartIntent: StoredCodable {
    public func write(to w: inout StoredWriter) {
        provider.write(to: &w)
        platform.write(to: &w)
        token.write(to: &w)
        info.write(to: &w)
        contact.write(to: &w)
        clientId.write(to: &w)
    }
    public init(from r: inout StoredReader) throws {
        self.init(
            provider: try r.string(), platform: try r.string(), token: try TokenRef?(from: &r), info: try DeviceInfo(from: &r),
            contact: try ContactRequest?(from: &r), clientId: try String?(from: &r))
    }
}

extension IntentPayload: StoredCodable {
    public func write(to w: inout StoredWriter) {
        switch self {
        case .start(let s):
            w.bytes.append(0)
            s.write(to: &w)
        case .setToken(let t):
            w.bytes.append(1)
            t.write(to: &w)
        case .removeToken:
            w.bytes.append(2)
        case .login(let fieldId, let value):
            w.bytes.append(3)
            fieldId.write(to: &w)
            value.write(to: &w)
        case .logout:
            w.bytes.append(4)
        case .events(let events):
            w.bytes.append(5)
            events.write(to: &w)
        case .release(let tokenHash, let cause):
            w.bytes.append(Self.code(of: cause, moved: 6, invalidated: 10, expired: 12))
            tokenHash.write(to: &w)
        case .forget:
            w.bytes.append(7)
        case .releaseAll(let tokenHash, let cause):
            w.bytes.append(Self.code(of: cause, moved: 8, invalidated: 11, expired: 13))
            tokenHash.write(to: &w)
        case .openIdLogin(let fieldId, let token):
            w.bytes.append(9)
            fieldId.write(to: &w)
            token.write(to: &w)
        }
    }
    public init(from r: inout StoredReader) throws {
        switch try r.byte() {
        case 0: self = .start(try StartIntent(from: &r))
        case 1: self = .setToken(try TokenRef(from: &r))
        case 2: self = .removeToken
        case 3: self = .login(fieldId: try Int(from: &r), value: try r.string())
        case 4: self = .logout
        case 5: self = .events(try [CustomEvent](from: &r))
        case 6: self = .release(tokenHash: try r.string())
        case 7: self = .forget
        case 8: self = .releaseAll(tokenHash: try r.string())
        case 9: self = .openIdLogin(fieldId: try Int(from: &r), token: try r.string())
        case 10: self = .release(tokenHash: try r.string(), cause: .invalidated)
        case 11: self = .releaseAll(tokenHash: try r.string(), cause: .invalidated)
        case 12: self = .release(tokenHash: try r.string(), cause: .expired)
        case 13: self = .releaseAll(tokenHash: try r.string(), cause: .expired)
        default: throw StoredFormError.malformed("intent payload")
        }
    }

    /// A release's code by its cause (a move keeps the code it had before releases had causes).
    private static func code(of cause: ReleaseCause, moved: UInt8, invalidated: UInt8, expired: UInt8) -> UInt8 {
        switch cause {
        case .moved: moved
        case .invalidated: invalidated
        case .expired: expired
        }
    }
}
