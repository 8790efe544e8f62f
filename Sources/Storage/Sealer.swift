import Crypto
import Foundation

/// Encrypts what storage keeps of a device (contact and refresh tokens, client state, push tokens,
/// contact values) with AES-256-GCM, so a copied database file or backup holds no usable secret.
///
/// The key comes from configuration or a key file; a check value stored beside the data makes a
/// store opened with the wrong key fail at start with a clear message, rather than send garbage.
public struct Sealer: Sendable {
    private let key: SymmetricKey

    public init(key: SymmetricKey) {
        self.key = key
    }

    /// A key from 32 bytes of base64 (standard or url alphabet).
    public init(base64 text: String) throws {
        var s = text.trimmingCharacters(in: .whitespacesAndNewlines).replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while s.count % 4 != 0 { s += "=" }
        guard let data = Data(base64Encoded: s), data.count == 32 else {
            throw StorageError.invalidKey("the encryption key must be 32 bytes, base64-encoded (e.g. `openssl rand -base64 32`)")
        }
        key = SymmetricKey(data: data)
    }

    /// Reads the key file, or creates it (mode 0600) with a fresh random key when it does not exist.
    public static func fromKeyFile(_ path: String, create: Bool) throws -> Sealer {
        if let text = try? String(contentsOfFile: path, encoding: .utf8) {
            return try Sealer(base64: text)
        }
        guard create else { throw StorageError.invalidKey("the key file \(path) cannot be read") }
        let key = SymmetricKey(size: .bits256)
        let text = key.withUnsafeBytes { Data($0).base64EncodedString() } + "\n"
        let dir = (path as NSString).deletingLastPathComponent
        if !dir.isEmpty { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        guard FileManager.default.createFile(atPath: path, contents: Data(text.utf8), attributes: [.posixPermissions: 0o600]) else {
            throw StorageError.invalidKey("the key file \(path) cannot be created")
        }
        return Sealer(key: key)
    }

    func seal(_ plaintext: Data) throws -> Data {
        guard let combined = try AES.GCM.seal(plaintext, using: key).combined else {
            throw StorageError.corrupt("AES-GCM produced no combined box")
        }
        return combined
    }

    func open(_ sealed: Data) throws -> Data {
        do {
            return try AES.GCM.open(AES.GCM.SealedBox(combined: sealed), using: key)
        } catch {
            throw StorageError.wrongKey
        }
    }

    /// A keyed hash (HMAC-SHA256, hex) under a key derived from this one for `purpose`: the same input gives the same
    /// value on every instance with this key, and a copied database cannot be searched with guessed inputs.
    func mac(_ data: Data, purpose: String) -> String {
        let derived = HKDF<SHA256>.deriveKey(inputKeyMaterial: key, info: Data("pushbridge \(purpose) v1".utf8), outputByteCount: 32)
        return HMAC<SHA256>.authenticationCode(for: data, using: derived).map { String(format: "%02x", $0) }.joined()
    }

    static let checkPlaintext = Data("pushbridge key check v1".utf8)
}
