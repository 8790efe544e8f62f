import GRDB

/// Schema migrations, from the first version on. Never edit a registered migration: add one.
enum SQLiteSchema {
    static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("v1") { db in
            // One row per device. Registration columns are written by the API; `data` (the engine's
            // DeviceState as JSON) only by engine steps, so the two never overwrite each other.
            try db.execute(sql: """
                CREATE TABLE devices (
                    app TEXT NOT NULL,
                    device_id TEXT NOT NULL,
                    client_id TEXT NOT NULL,
                    provider TEXT,
                    platform TEXT NOT NULL,
                    token_hash TEXT,
                    state TEXT NOT NULL,
                    pending INTEGER NOT NULL DEFAULT 0,
                    due_at INTEGER,
                    lease_owner TEXT,
                    lease_until INTEGER,
                    created_at INTEGER NOT NULL,
                    updated_at INTEGER NOT NULL,
                    data BLOB NOT NULL,
                    PRIMARY KEY (app, device_id)
                ) WITHOUT ROWID;
                CREATE INDEX devices_due ON devices(due_at) WHERE due_at IS NOT NULL;
                CREATE INDEX devices_state ON devices(app, state, device_id);

                CREATE TABLE intents (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    app TEXT NOT NULL,
                    device_id TEXT NOT NULL,
                    priority INTEGER NOT NULL,
                    kind TEXT NOT NULL,
                    token_hash TEXT,
                    waits_for TEXT,
                    progress INTEGER NOT NULL DEFAULT 0,
                    accepted_at INTEGER NOT NULL,
                    payload BLOB NOT NULL
                );
                CREATE INDEX intents_device ON intents(app, device_id, priority, id);
                CREATE INDEX intents_waits ON intents(app, waits_for) WHERE waits_for IS NOT NULL;

                CREATE TABLE token_claims (
                    app TEXT NOT NULL,
                    token_hash TEXT NOT NULL,
                    device_id TEXT NOT NULL,
                    PRIMARY KEY (app, token_hash)
                ) WITHOUT ROWID;
                CREATE INDEX token_claims_device ON token_claims(app, device_id);

                CREATE TABLE queue_counts (
                    app TEXT PRIMARY KEY,
                    queued INTEGER NOT NULL
                ) WITHOUT ROWID;
                """)
        }
        m.registerMigration("v2: index for the newest failures") { db in
            try db.execute(sql: "CREATE INDEX devices_state_updated ON devices(state, updated_at)")
        }
        m.registerMigration("v3: meta (encryption key check)") { db in
            try db.execute(sql: "CREATE TABLE meta (name TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID")
        }
        m.registerMigration("v4: index for the leases cleared at open") { db in
            // Only leased rows are in it: clearing stale leases at open costs what there is to clear, not a
            // scan of every device (seconds at a million).
            try db.execute(sql: "CREATE INDEX devices_leased ON devices(lease_owner) WHERE lease_owner IS NOT NULL")
        }
        m.registerMigration("v5: index for the releases a token's PUT waits for") { db in
            try db.execute(sql: "CREATE INDEX intents_release ON intents(app, token_hash) WHERE kind = 'release'")
        }
        m.registerMigration("v6: webhook outbox") { db in
            // One row per message and endpoint, written in the commit that changed the device's state; deleted once
            // answered 2xx or given up. `snapshot` is the device as that commit left it (sealed), so every attempt
            // renders the same body. `devices.notified` is what backends last heard of the device
            // (`WebhookRouting.notice`).
            try db.execute(sql: """
                CREATE TABLE webhook_outbox (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    msg_id TEXT NOT NULL UNIQUE,
                    app TEXT NOT NULL,
                    device_id TEXT NOT NULL,
                    endpoint TEXT NOT NULL,
                    event TEXT NOT NULL,
                    reason TEXT,
                    occurred_at INTEGER NOT NULL,
                    snapshot BLOB,
                    attempts INTEGER NOT NULL DEFAULT 0,
                    next_attempt_at INTEGER NOT NULL,
                    last_status INTEGER,
                    lease_owner TEXT,
                    lease_until INTEGER
                );
                CREATE INDEX webhook_outbox_order ON webhook_outbox(endpoint, app, device_id, id);
                CREATE INDEX webhook_outbox_due ON webhook_outbox(endpoint, next_attempt_at);
                ALTER TABLE devices ADD COLUMN notified TEXT;
                """)
        }
        m.registerMigration("v7: what backends heard, from the start; the reason a token left") { db in
            // `notified` was kept only for apps with endpoints: every device starts from its state (a registered
            // device's token hash at rest is the one at ME), so an endpoint configured later hears changes only.
            try db.execute(sql: """
                ALTER TABLE devices ADD COLUMN unregister_reason TEXT;
                UPDATE devices SET notified = CASE state
                    WHEN 'registered' THEN 'device.registered:' || COALESCE(token_hash, '')
                    WHEN 'failed' THEN 'device.failed'
                    WHEN 'unregistered' THEN 'device.unregistered'
                    ELSE NULL END
                WHERE notified IS NULL;
                """)
        }
        m.registerMigration("v8: device history") { db in
            // What happened to each device (`at` in microseconds, `HistoryTime`): bounded by `history.perDevice`
            // (`appendHistory`) and `history.maxAgeDays` (`trimHistory`), deleted with the device.
            try db.execute(sql: """
                CREATE TABLE device_history (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    app TEXT NOT NULL,
                    device_id TEXT NOT NULL,
                    at INTEGER NOT NULL,
                    kind TEXT NOT NULL,
                    detail TEXT NOT NULL
                );
                CREATE INDEX device_history_device ON device_history(app, device_id, id);
                CREATE INDEX device_history_at ON device_history(at);
                """)
        }
        m.registerMigration("v9: idempotency keys; the history indexed by time") { db in
            // Per app, the keys of API writes sent with `Idempotency-Key`: a keyed fingerprint of the request and, once
            // answered, the answer (a status document or a problem); kept 24 hours (`purgeIdempotencyKeys`).
            try db.execute(sql: """
                CREATE TABLE idempotency_keys (
                    app TEXT NOT NULL,
                    key TEXT NOT NULL,
                    fingerprint TEXT NOT NULL,
                    claim TEXT NOT NULL,
                    created_at INTEGER NOT NULL,
                    status INTEGER,
                    content_type TEXT,
                    body BLOB,
                    PRIMARY KEY (app, key)
                );
                CREATE INDEX idempotency_keys_created ON idempotency_keys(created_at);
                """)
            // The history is read and capped newest first by time: index it so.
            try db.execute(sql: """
                CREATE INDEX device_history_time ON device_history(app, device_id, at);
                DROP INDEX device_history_device;
                """)
        }
        m.registerMigration("v10: when each device was last seen; the retention sweep's mark") { db in
            // `last_seen_at` (epoch ms): the newest backend write for the device, deduplicated ones included (those
            // arrive in batches, `markSeen`). `expiry`: what the retention sweep queued for it (`RetentionMark`),
            // cleared by the next backend write. Devices start from their last update.
            try db.execute(sql: """
                ALTER TABLE devices ADD COLUMN last_seen_at INTEGER NOT NULL DEFAULT 0;
                ALTER TABLE devices ADD COLUMN expiry INTEGER NOT NULL DEFAULT 0;
                UPDATE devices SET last_seen_at = updated_at;
                CREATE INDEX devices_last_seen ON devices(app, expiry, last_seen_at);
                """)
        }
        m.registerMigration("v11: the keyed hash of each device's contact") { db in
            // `contact_key`: the HMAC of the identified contact the device's backend asked for last (`ContactKey`),
            // for `POST .../contacts/...`. Devices stored before have theirs set once at open (`backfillContactKeys`).
            try db.execute(sql: """
                ALTER TABLE devices ADD COLUMN contact_key TEXT;
                CREATE INDEX devices_contact ON devices(app, contact_key) WHERE contact_key IS NOT NULL;
                """)
        }
        return m
    }
}
