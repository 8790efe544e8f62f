import Crypto
import Foundation
import MobileEngage

/// What the backend wants for a device once `head` is applied on top of the completed intents.
///
/// Recomputed on every step instead of stored: it is a pure function of the state and the head
/// intent, so a crash between steps cannot leave it half-applied.
public struct Desired: Sendable, Hashable {
    public var platform: String
    public var info: DeviceInfo
    public var contact: ContactRequest?
    public var token: TokenRef?
    public var clientId: String?

    public init(state: DeviceState, head: IntentPayload?) {
        platform = state.platform
        info = state.info
        contact = state.wantedContact
        token = state.wantedToken
        clientId = nil
        switch head {
        case .start(let start)?:
            platform = start.token?.platform ?? start.platform
            info = start.info
            if let c = start.contact { contact = c }
            if let t = start.token { token = t }
            clientId = start.clientId
        case .setToken(let t)?:
            token = t
            platform = t.platform
        case .removeToken?:
            token = nil
        case .login?, .openIdLogin?, .logout?:
            contact = head?.requestedContact
        case .release(let hash, _)?:
            if token?.tokenHash == hash { token = nil }
        case .releaseAll?:
            token = nil
        case .forget?:
            token = nil
        case .events?, nil:
            break
        }
    }

    /// The state once the head intent is complete.
    public func applied(to state: DeviceState) -> DeviceState {
        var s = state
        s.platform = platform
        s.info = info
        s.wantedContact = contact
        s.wantedToken = token
        return s
    }
}

public enum DeviceInfoHash {
    /// Hash of a `POST /client` body without `sdkVersion`, so upgrading the bridge re-sends no device.
    public static func of(_ body: DeviceInfoBody) -> String {
        var copy = body
        copy.sdkVersion = ""
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data = (try? encoder.encode(copy)) ?? Data()
        // Lowercase hex, two digits a byte (what `String(format: "%02x")` gives, without its cost).
        let digits: [UInt8] = Array("0123456789abcdef".utf8)
        var hex: [UInt8] = []
        hex.reserveCapacity(64)
        for byte in SHA256.hash(data: data) {
            hex.append(digits[Int(byte >> 4)])
            hex.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: hex, as: UTF8.self)
    }
}
