/// Ids of push wrappers that clients send in place of the device's native token.
///
/// Expo hands apps an Expo push token (`ExponentPushToken[...]`, newer `ExpoPushToken[...]`) that
/// only Expo's own push service can use; OneSignal (player and subscription ids) and Airship
/// (channel ids) hand out UUIDs. None of them is an FCM, HMS or APNs token, and no token of those
/// providers has either shape: FCM and HMS tokens are seen only as `[A-Za-z0-9_:-]` strings far
/// longer than 36 characters (no contract, but a UUID is no token either way); an APNs token is at
/// least 32 bytes, that is 64 hex digits or 43 base64 characters, never 36 characters. A descriptor
/// with `rejectsWrapperIDs` (fcm, hms and apns) therefore refuses both shapes and says which native
/// token to send instead.
///
/// Plugins call `check` on the token as `InputText` leaves it (outer white space trimmed, one level
/// of JSON quoting removed) and before reading it any further, so the APNs reader, which drops the
/// spaces between hex groups and decodes base64url (whose alphabet has `-`), never turns a UUID
/// into bytes first.
enum WrapperIDs {
    /// The starts of Expo push tokens, as Expo writes them; compared byte for byte, so case-sensitive.
    static let expoPrefixes = ["ExponentPushToken[", "ExpoPushToken["]

    static func check(_ token: String, descriptor: ProviderDescriptor) throws(TokenRejection) {
        guard descriptor.rejectsWrapperIDs == true else { return }
        if let prefix = expoPrefix(of: token) {
            let names = nativeTokenNames(descriptor)
            throw TokenRejection(
                TokenRejection.Rule.looksLikeExpoPushToken,
                "this is an Expo push token (\(prefix)...]), not \(names.what): send the device's native \(names.native) (\(names.source)), not the Expo token.")
        }
        if isUUID(token.utf8) {
            let names = nativeTokenNames(descriptor)
            throw TokenRejection(
                TokenRejection.Rule.looksLikeUUID,
                "a UUID (8-4-4-4-12 hex digits) is a push service's subscription or channel id (OneSignal player or subscription id, Airship channel id), never \(names.what): send the device's native \(names.native) instead.")
        }
    }

    /// The Expo prefix `token` starts with, if any.
    static func expoPrefix(of token: String) -> String? {
        expoPrefixes.first { token.utf8.starts(with: $0.utf8) }
    }

    /// Exactly 36 bytes: hex digits in either case, with hyphens at offsets 8, 13, 18 and 23.
    static func isUUID<C: Collection<UInt8>>(_ bytes: C) -> Bool {
        guard bytes.count == 36 else { return false }
        for (offset, byte) in bytes.enumerated() {
            let isHyphenSlot = offset == 8 || offset == 13 || offset == 18 || offset == 23
            guard isHyphenSlot ? (byte == UInt8(ascii: "-")) : HexCoding.isHexDigit(byte) else { return false }
        }
        return true
    }

    /// What the messages call the provider's token, by delivery channel (the namespace), so that an
    /// operator's second FCM provider is named like the first: `what` with its article ("an FCM
    /// registration token"), `native` without ("FCM token"), and where an app gets the native one. Expo's
    /// `getDevicePushTokenAsync` gives the FCM token on Android and the APNs token on iOS, never an HMS token.
    private static func nativeTokenNames(_ descriptor: ProviderDescriptor) -> (what: String, native: String, source: String) {
        switch descriptor.namespace {
        case "fcm": (what: "an FCM registration token", native: "FCM token", source: "in Expo: getDevicePushTokenAsync")
        case "hms": (what: "an HMS push token", native: "HMS push token", source: "from HMS Push Kit's HmsInstanceId.getToken")
        case "apns": (what: "an APNs device token", native: "APNs device token", source: "in Expo: getDevicePushTokenAsync")
        default: (what: "a \(descriptor.id) token", native: "\(descriptor.id) token", source: "from the push provider's own SDK")
        }
    }
}
