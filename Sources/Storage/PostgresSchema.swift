import Foundation
import PostgresNIO

/// PostgreSQL migrations, recorded in `schema_migrations`. Never edit a registered migration: add one.
///
/// Several instances may start at once: the migrations run in one transaction under an advisory lock.
enum PostgresSchema {
    struct Migration {
        var version: Int
        var name: String
        var sql: [String]
    }

    static let migrations: [Migration] = [
        Migration(version: 1, name: "devices, intents, token claims, queue counts, meta", sql: [
            // One row per device. Registration columns are written by the API; `data` (the engine's sealed
            // DeviceState) only by engine steps. Times are milliseconds since 1970, as in SQLite. Device ids
            // compare bytewise (COLLATE "C"), so listing pages in the same order as SQLite does.
            """
            CREATE TABLE devices (
                app TEXT NOT NULL,
                device_id TEXT COLLATE "C" NOT NULL,
                client_id TEXT NOT NULL,
                provider TEXT,
                platform TEXT NOT NULL,
                token_hash TEXT,
                state TEXT NOT NULL,
                pending BIGINT NOT NULL DEFAULT 0,
                due_at BIGINT,
                lease_owner TEXT,
                lease_until BIGINT,
                created_at BIGINT NOT NULL,
                updated_at BIGINT NOT NULL,
                data BYTEA NOT NULL,
                PRIMARY KEY (app, device_id)
            )
            """,
            "CREATE INDEX devices_due ON devices(due_at) WHERE due_at IS NOT NULL",
            "CREATE INDEX devices_state ON devices(app, state, device_id)",
            "CREATE INDEX devices_state_updated ON devices(state, updated_at)",
            """
            CREATE TABLE intents (
                id BIGSERIAL PRIMARY KEY,
                app TEXT NOT NULL,
                device_id TEXT COLLATE "C" NOT NULL,
                priority INTEGER NOT NULL,
                kind TEXT NOT NULL,
                token_hash TEXT,
                waits_for TEXT COLLATE "C",
                progress BIGINT NOT NULL DEFAULT 0,
                accepted_at BIGINT NOT NULL,
                payload BYTEA NOT NULL
            )
            """,
            "CREATE INDEX intents_device ON intents(app, device_id, priority, id)",
            "CREATE INDEX intents_waits ON intents(app, waits_for) WHERE waits_for IS NOT NULL",
            """
            CREATE TABLE token_claims (
                app TEXT NOT NULL,
                token_hash TEXT NOT NULL,
                device_id TEXT COLLATE "C" NOT NULL,
                PRIMARY KEY (app, token_hash)
            )
            """,
            "CREATE INDEX token_claims_device ON token_claims(app, device_id)",
            // Queued intents per app, spread over a few rows per app so that writers of one app on several
            // instances do not all wait for one row lock; readers add the shards up.
            """
            CREATE TABLE queue_counts (
                app TEXT NOT NULL,
                shard INTEGER NOT NULL,
                queued BIGINT NOT NULL,
                PRIMARY KEY (app, shard)
            )
            """,
            "CREATE TABLE meta (name TEXT PRIMARY KEY, value BYTEA NOT NULL)",
        ]),
        Migration(version: 2, name: "index for the releases a token's PUT waits for", sql: [
            "CREATE INDEX intents_release ON intents(app, token_hash) WHERE kind = 'release'",
        ]),
        Migration(version: 3, name: "index for the leases an instance gives back after a lost claim", sql: [
            "CREATE INDEX devices_leased ON devices(lease_owner) WHERE lease_owner IS NOT NULL",
        ]),
        // As SQLite's v6: one row per message and endpoint, written in the commit that changed the device's state;
        // `devices.notified` is what backends last heard of the device (`WebhookRouting.notice`).
        Migration(version: 4, name: "webhook outbox", sql: [
            """
            CREATE TABLE webhook_outbox (
                id BIGSERIAL PRIMARY KEY,
                msg_id TEXT NOT NULL UNIQUE,
                app TEXT NOT NULL,
                device_id TEXT NOT NULL,
                endpoint TEXT NOT NULL,
                event TEXT NOT NULL,
                reason TEXT,
                occurred_at BIGINT NOT NULL,
                snapshot BYTEA,
                attempts INTEGER NOT NULL DEFAULT 0,
                next_attempt_at BIGINT NOT NULL,
                last_status INTEGER,
                lease_owner TEXT,
                lease_until BIGINT
            )
            """,
            "CREATE INDEX webhook_outbox_order ON webhook_outbox(endpoint, app, device_id, id)",
            "CREATE INDEX webhook_outbox_due ON webhook_outbox(endpoint, next_attempt_at)",
            "ALTER TABLE devices ADD COLUMN notified TEXT",
        ]),
        // As SQLite's v7.
        Migration(version: 5, name: "what backends heard, from the start; the reason a token left", sql: [
            "ALTER TABLE devices ADD COLUMN unregister_reason TEXT",
            """
            UPDATE devices SET notified = CASE state
                WHEN 'registered' THEN 'device.registered:' || COALESCE(token_hash, '')
                WHEN 'failed' THEN 'device.failed'
                WHEN 'unregistered' THEN 'device.unregistered'
                ELSE NULL END
            WHERE notified IS NULL
            """,
        ]),
        // What happened to each device (`at` in microseconds, `HistoryTime`), as in SQLite's v8.
        Migration(version: 6, name: "device history", sql: [
            """
            CREATE TABLE device_history (
                id BIGSERIAL PRIMARY KEY,
                app TEXT NOT NULL,
                device_id TEXT NOT NULL,
                at BIGINT NOT NULL,
                kind TEXT NOT NULL,
                detail TEXT NOT NULL
            )
            """,
            "CREATE INDEX device_history_device ON device_history(app, device_id, id)",
            "CREATE INDEX device_history_at ON device_history(at)",
        ]),
        // The keys of API writes sent with `Idempotency-Key`, and the history's index by time, as in SQLite's v9.
        Migration(version: 7, name: "idempotency keys; the history indexed by time", sql: [
            """
            CREATE TABLE idempotency_keys (
                app TEXT NOT NULL,
                key TEXT NOT NULL,
                fingerprint TEXT NOT NULL,
                claim TEXT NOT NULL,
                created_at BIGINT NOT NULL,
                status INTEGER,
                content_type TEXT,
                body BYTEA,
                PRIMARY KEY (app, key)
            )
            """,
            "CREATE INDEX idempotency_keys_created ON idempotency_keys(created_at)",
            // The history is read and capped newest first by time: index it so.
            "CREATE INDEX device_history_time ON device_history(app, device_id, at)",
            "DROP INDEX device_history_device",
        ]),
        // When each device was last seen and the retention sweep's mark, as in SQLite's v10.
        Migration(version: 8, name: "when each device was last seen; the retention sweep's mark", sql: [
            "ALTER TABLE devices ADD COLUMN last_seen_at BIGINT NOT NULL DEFAULT 0",
            "ALTER TABLE devices ADD COLUMN expiry INTEGER NOT NULL DEFAULT 0",
            "UPDATE devices SET last_seen_at = updated_at",
            // An instance not yet upgraded (a rolling upgrade) inserts devices without the column: they start as seen
            // now, not in 1970.
            "ALTER TABLE devices ALTER COLUMN last_seen_at SET DEFAULT ((extract(epoch FROM clock_timestamp()) * 1000)::bigint)",
            "CREATE INDEX devices_last_seen ON devices(app, expiry, last_seen_at)",
        ]),
        // The keyed hash of each device's contact, as in SQLite's v11 (devices stored before get theirs in `migrate`).
        Migration(version: 9, name: "the keyed hash of each device's contact", sql: [
            "ALTER TABLE devices ADD COLUMN contact_key TEXT",
            "CREATE INDEX devices_contact ON devices(app, contact_key) WHERE contact_key IS NOT NULL",
        ]),
    ]

    static func migrate(_ conn: PostgresConnection, logger: Logger) async throws {
        try await conn.query("""
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())
            """, logger: logger)
        var applied = Set<Int>()
        for try await v in try await conn.query("SELECT version FROM schema_migrations", logger: logger).decode(Int.self) {
            applied.insert(v)
        }
        for m in migrations where !applied.contains(m.version) {
            for statement in m.sql {
                try await conn.query(PostgresQuery(unsafeSQL: statement), logger: logger)
            }
            try await conn.query("INSERT INTO schema_migrations(version, name) VALUES (\(m.version), \(m.name))", logger: logger)
            logger.info("storage migration applied", metadata: ["version": "\(m.version)", "name": "\(m.name)"])
        }
    }
}
