import Foundation
import GRDB
import PostgresNIO

/// What a request with an `Idempotency-Key` may do (`claimIdempotencyKey`).
public enum IdempotencyClaim: Sendable, Hashable {
    /// The key is new (or its earlier use expired, or was abandoned): answer the request, then settle the key with
    /// this claim token.
    case proceed(claim: String)
    /// The key was used with the same request, which was answered: send that answer again.
    case replay(IdempotentAnswer)
    /// The key is being used with the same request right now.
    case inProgress
    /// The key was used with another method, path or body.
    case mismatch
}

/// An answer kept for an idempotency key: its status, content type and body (a status document or a problem: ids
/// and hashes only).
public struct IdempotentAnswer: Sendable, Hashable {
    public var status: Int
    public var contentType: String
    public var body: [UInt8]

    public init(status: Int, contentType: String, body: [UInt8]) {
        self.status = status
        self.contentType = contentType
        self.body = body
    }
}

/// How long keys are kept.
public struct IdempotencyWindow: Sendable, Hashable {
    /// A key's answer is given again this long after its first use (the contract: 24 hours).
    public var keep: TimeInterval
    /// A key claimed but never settled (the instance died while answering) is free again after this long.
    public var abandonedAfter: TimeInterval

    public init(keep: TimeInterval = 86_400, abandonedAfter: TimeInterval = 60) {
        self.keep = keep
        self.abandonedAfter = abandonedAfter
    }
}

extension IdempotencyWindow {
    /// The decision once the row is known: nil when the key may be (re)claimed.
    static func decide(fingerprint: String, stored: String, status: Int?, contentType: String?, body: [UInt8]?) -> IdempotencyClaim {
        guard stored == fingerprint else { return .mismatch }
        guard let status else { return .inProgress }
        return .replay(IdempotentAnswer(status: status, contentType: contentType ?? "application/json", body: body ?? []))
    }
}

extension Sealer {
    /// The fingerprint of a request (method, path, body): keyed, so the bodies (a login's contact value) cannot be
    /// guessed back from a copied database.
    func requestFingerprint(_ request: Data) -> String { mac(request, purpose: "idempotency") }
}

extension SQLiteDeviceStore {
    public func claimIdempotencyKey(app: String, key: String, request: Data, now: Date, window: IdempotencyWindow) async throws -> IdempotencyClaim {
        let fingerprint = sealer.requestFingerprint(request)
        let nowMs = Codec.ms(now)
        let expired = Codec.ms(now.addingTimeInterval(-window.keep))
        let abandoned = Codec.ms(now.addingTimeInterval(-window.abandonedAfter))
        let claim = UUID().uuidString
        return try await writes.write { db in
            // A new key, an expired one or one abandoned mid-answer is taken in the same statement.
            let taken = try Row.fetchOne(db.cachedStatement(sql: """
                INSERT INTO idempotency_keys(app, key, fingerprint, claim, created_at) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT(app, key) DO UPDATE SET fingerprint = excluded.fingerprint, claim = excluded.claim, created_at = excluded.created_at,
                    status = NULL, content_type = NULL, body = NULL
                WHERE idempotency_keys.created_at < ? OR (idempotency_keys.status IS NULL AND idempotency_keys.created_at < ?)
                RETURNING 1
                """), arguments: [app, key, fingerprint, claim, nowMs, expired, abandoned])
            if taken != nil { return .proceed(claim: claim) }
            guard let row = try Row.fetchOne(
                db.cachedStatement(sql: "SELECT fingerprint, status, content_type, body FROM idempotency_keys WHERE app = ? AND key = ?"),
                arguments: [app, key])
            else { return .inProgress }
            let body: Data? = row["body"]
            return IdempotencyWindow.decide(
                fingerprint: fingerprint, stored: row["fingerprint"], status: row["status"], contentType: row["content_type"], body: body.map { [UInt8]($0) })
        }
    }

    public func settleIdempotencyKey(app: String, key: String, claim: String, request: Data, answer: IdempotentAnswer?) async throws {
        let fingerprint = sealer.requestFingerprint(request)
        try await writes.write { db in
            if let answer {
                try db.cachedStatement(sql: """
                    UPDATE idempotency_keys SET status = ?, content_type = ?, body = ?
                    WHERE app = ? AND key = ? AND claim = ? AND fingerprint = ? AND status IS NULL
                    """).execute(arguments: [answer.status, answer.contentType, Data(answer.body), app, key, claim, fingerprint])
            } else {
                try db.cachedStatement(sql: "DELETE FROM idempotency_keys WHERE app = ? AND key = ? AND claim = ? AND fingerprint = ? AND status IS NULL")
                    .execute(arguments: [app, key, claim, fingerprint])
            }
        }
    }

    public func purgeIdempotencyKeys(before: Date) async throws -> Int {
        try await writes.write { db in
            try db.execute(sql: "DELETE FROM idempotency_keys WHERE created_at < ?", arguments: [Codec.ms(before)])
            return db.changesCount
        }
    }
}

extension PostgresDeviceStore {
    public func claimIdempotencyKey(app: String, key: String, request: Data, now: Date, window: IdempotencyWindow) async throws -> IdempotencyClaim {
        try await ready.value()
        let fingerprint = sealer.requestFingerprint(request)
        let nowMs = Codec.ms(now)
        let expired = Codec.ms(now.addingTimeInterval(-window.keep))
        let abandoned = Codec.ms(now.addingTimeInterval(-window.abandonedAfter))
        let claim = UUID().uuidString
        return try await transaction { tx in
            // A new key, an expired one or one abandoned mid-answer is taken in the same statement; a request with
            // the same key at the same moment waits for this one's row and then finds it taken.
            let taken = try await tx.rows(PGStatement.ClaimIdempotencyKey.self, """
                INSERT INTO idempotency_keys(app, key, fingerprint, claim, created_at) VALUES (\(app), \(key), \(fingerprint), \(claim), \(nowMs))
                ON CONFLICT (app, key) DO UPDATE SET fingerprint = EXCLUDED.fingerprint, claim = EXCLUDED.claim, created_at = EXCLUDED.created_at,
                    status = NULL, content_type = NULL, body = NULL
                WHERE idempotency_keys.created_at < \(expired) OR (idempotency_keys.status IS NULL AND idempotency_keys.created_at < \(abandoned))
                RETURNING 1
                """)
            if !taken.isEmpty { return .proceed(claim: claim) }
            guard let row = try await tx.rows(PGStatement.ReadIdempotencyKey.self, """
                SELECT fingerprint, status, content_type, body FROM idempotency_keys WHERE app = \(app) AND key = \(key)
                """).first
            else { return .inProgress }
            let (stored, status, contentType, body) = try row.decode((String, Int32?, String?, Data?).self)
            return IdempotencyWindow.decide(
                fingerprint: fingerprint, stored: stored, status: status.map(Int.init), contentType: contentType, body: body.map { [UInt8]($0) })
        }
    }

    public func settleIdempotencyKey(app: String, key: String, claim: String, request: Data, answer: IdempotentAnswer?) async throws {
        try await ready.value()
        let fingerprint = sealer.requestFingerprint(request)
        try await transaction { tx in
            if let answer {
                let (status, contentType, body) = (Int32(answer.status), answer.contentType, Data(answer.body))
                try await tx.exec(PGStatement.SettleIdempotencyKey.self, """
                    UPDATE idempotency_keys SET status = \(status), content_type = \(contentType), body = \(body)
                    WHERE app = \(app) AND key = \(key) AND claim = \(claim) AND fingerprint = \(fingerprint) AND status IS NULL
                    """)
            } else {
                try await tx.exec(PGStatement.ReleaseIdempotencyKey.self, """
                    DELETE FROM idempotency_keys WHERE app = \(app) AND key = \(key) AND claim = \(claim) AND fingerprint = \(fingerprint) AND status IS NULL
                    """)
            }
        }
    }

    public func purgeIdempotencyKeys(before: Date) async throws -> Int {
        try await ready.value()
        let cutoff = Codec.ms(before)
        return try await transaction(synchronous: false) { tx in
            try await tx.count(PGStatement.PurgeIdempotencyKeys.self, "DELETE FROM idempotency_keys WHERE created_at < \(cutoff) RETURNING 1")
        }
    }
}
