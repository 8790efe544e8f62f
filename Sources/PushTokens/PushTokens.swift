/// # PushTokens
///
/// Parses, validates, canonicalises and hashes the push tokens a backend hands the service, one
/// plugin per kind of token (`APNsPlugin`, `OpaqueTokenPlugin`, `WebPushPlugin`, `SafariPlugin`)
/// chosen through the provider descriptor (`providers/*.json`, compiled in as `BuiltInProviders`).
/// The rules come from `docs/push-tokens.md`; this comment records the choices that document leaves
/// open, so the service and its operators know exactly what is accepted.
///
/// ## Policy
/// - **Provider ids** are matched exactly (case-sensitive, no trimming). Unknown ids are refused
///   with `unknown-provider`, naming the known ids and, when the input looks like one, a provider.
/// - **Input size**: any string input above 16 KiB of UTF-8 is refused first (`input-too-large`),
///   before trimming or parsing. This is a safety bound, not a token-length rule (HMS has none).
/// - **Trimming**: leading and trailing Unicode white space and byte-order marks are removed from
///   string input. White space inside a token is never removed, except between the hex groups of
///   an APNs token (`6B596AB0 B60568EF ...`, with or without `<>`).
/// - **JSON quoting**: string tokens (APNs, FCM, HMS, legacy Safari) lose one level of JSON quoting
///   (`"\"abc\""` reads as `abc`), then are trimmed again. Web Push input decodes at most two levels
///   of JSON text (`too-deeply-encoded` beyond). `.json(.string(s))` is read exactly like `.text(s)`.
/// - **Placeholder literals**: `null`, `undefined`, `nil`, `none`, `(null)` and `NaN` (any ASCII
///   case), and JSON `null`, are refused with `placeholder-literal`.
/// - **APNs**: 32...200 bytes (descriptor `minBytes`/`maxBytes`). A string of only hex digits (and
///   spaces) is hex, never base64, even if it would decode as base64; odd digit counts are
///   `hex-odd-length`. Anything else must be base64 or base64url, padded or not, one alphabet, zero
///   trailing bits. `0x` prefixes (`hex-prefix`) and the iOS 13 `{length = ..., bytes = 0x...}`
///   description (`elided-description`) are refused, as are FCM-shaped tokens and URLs, with the
///   right provider named. Canonical form: lowercase hex.
/// - **APNs environment**: `production` or `sandbox`, in any ASCII case, returned lowercase; any
///   other value, including "", is `invalid-environment`. Every other kind ignores the environment
///   (and returns nil), including legacy Safari, whose tokens are always production.
/// - **FCM** (and HMS, "opaque like FCM"): kept verbatim; refused when empty, a placeholder, a URL,
///   or containing white space, control characters, non-ASCII, `"` or `\` (the last two are
///   left-overs of double JSON encoding; refusing them keeps normalisation idempotent). FCM alone: at most 4096 characters
///   and not an APNs-sized hex string (64 to 400 hex digits, even count). HMS: no length bound.
/// - **Wrapper ids** (descriptor `rejectsWrapperIDs`, set for fcm, hms and apns): after trimming and
///   unquoting, and before anything else reads the token, one that starts with `ExponentPushToken[`
///   or `ExpoPushToken[` (case as Expo writes them) is `looks-like-expo-push-token`, and a UUID
///   (8-4-4-4-12 hex digits, either case, with the hyphens; OneSignal and Airship ids) is
///   `looks-like-uuid`. Both reasons say to send the device's native token. No FCM, HMS or APNs
///   token has either shape. 32 hex digits without hyphens are not matched (APNs refuses them as
///   too short; FCM and HMS keep them).
/// - **Web Push endpoint**: at most 4096 bytes; `https` only (scheme in any case); no user info, no
///   fragment; port absent or exactly `443`; the host must be an LDH name (no IP literal: IPv6
///   brackets, or a last label that is numeric as WHATWG reads `127.1` or `0x7f.1`); the path must
///   be more than "/". Characters a browser never leaves raw (space, controls, non-ASCII, `"` `<`
///   `>` `\` `^` `` ` `` `{` `|` `}`) are refused, not repaired. Hosts ending in `.invalid` (such as
///   `permanently-removed.invalid`) are `endpoint-placeholder`; APNs provider-API hosts or
///   `/3/device/` paths are `endpoint-apns-provider-url`. The host must match one of the provider's
///   `endpointHosts` (`*.x.y` matches one or more labels before `.x.y`), and the path one of its
///   `endpointPathPrefixes` when given; a host of another provider names that provider.
/// - **Web Push keys**: p256dh is 65 bytes, 0x04 first, on P-256 (checked with swift-crypto); auth
///   is 16 bytes; both in either base64 alphabet, padded or not, and written back as unpadded
///   base64url. `expirationTime` is absent, null or a non-negative JSON integer; a JSON number with
///   a fraction or exponent is refused.
/// - **JSON objects**: unknown members are ignored; for duplicate members the last one wins (as in
///   `JSON.parse`); nesting deeper than 16 levels is malformed.
/// - **Legacy Safari**: provider `safari` with a string that is not a URL or JSON object, or an
///   object with `deviceToken` and no `endpoint`. The device token is read like an APNs token
///   (32...200 bytes), hashed in namespace `apns`; `websitePushId`, when present and not null,
///   must start with `web.` and is returned as `websitePushID`.
/// - **Descriptor files**: unknown fields, fields of another kind, unknown platforms and invalid
///   host patterns are errors naming the file and field. A file replaces the whole descriptor with
///   its id (not field by field); two files with one id in a directory are an error.
public enum PushTokensPolicy {
    /// String inputs above this many UTF-8 bytes are refused before parsing.
    public static let maxInputBytes = InputText.maxInputBytes
    /// APNs environments accepted for the `apns` kind.
    public static let apnsEnvironments: Set<String> = APNsPlugin.environments
}
