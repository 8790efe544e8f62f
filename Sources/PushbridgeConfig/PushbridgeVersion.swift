/// The bridge's release version, in one place: `pushbridge --version`, the default `emarsys.sdkVersion`
/// (`sdkVersion` and `X-EMARSYS-SDK-VERSION` toward ME), and the OpenAPI document's `info.version` (a test checks
/// that openapi.yaml states the same).
public enum PushbridgeVersion {
    public static let current = "0.1.0"
}
