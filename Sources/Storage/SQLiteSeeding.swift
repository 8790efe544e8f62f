import Foundation
import GRDB
import Workflow

/// Bulk loading for benchmarks (`pushbridge seed`): registered devices written straight into the store,
/// with the same rows, columns and encryption the API and the engine write, in batched transactions.
extension SQLiteDeviceStore {
    /// One device to seed: its key, the token ME holds for it, and its engine state.
    public struct SeedDevice: Sendable {
        public var key: DeviceKey
        public var token: TokenRef
        public var state: DeviceState
        public init(key: DeviceKey, token: TokenRef, state: DeviceState) {
            self.key = key
            self.token = token
            self.state = state
        }
    }

    /// Writes `devices` as registered, idle devices (no queued intents) in one transaction; a device
    /// that exists already is left as it is. Returns how many were written.
    @discardableResult
    public func seed(_ devices: [SeedDevice], now: Date) async throws -> Int {
        let sealer = self.sealer
        // Encoding and sealing outside the writer: the transaction only inserts.
        let sealed = try devices.map { try Codec.seal($0.state, sealer) }
        let nowMs = Codec.ms(now)
        return try await pool.write { db in
            let insertDevice = try db.cachedStatement(sql: """
                INSERT OR IGNORE INTO devices(app, device_id, client_id, provider, platform, token_hash, state, pending, due_at, created_at, updated_at, data, last_seen_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, 0, NULL, ?, ?, ?, ?)
                """)
            let insertClaim = try db.cachedStatement(sql: "INSERT OR IGNORE INTO token_claims(app, token_hash, device_id) VALUES (?, ?, ?)")
            var written = 0
            for (device, data) in zip(devices, sealed) {
                let name = DeviceStateName.of(device.state, pending: 0)
                try insertDevice.execute(arguments: [
                    device.key.appCode, device.key.deviceId, device.state.clientId, device.token.provider, device.token.platform,
                    device.token.tokenHash, name.rawValue, nowMs, nowMs, data, nowMs,
                ])
                guard db.changesCount > 0 else { continue }
                written += 1
                try insertClaim.execute(arguments: [device.key.appCode, device.token.tokenHash, device.key.deviceId])
            }
            return written
        }
    }
}
