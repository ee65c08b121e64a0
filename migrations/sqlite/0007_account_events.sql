-- Account events (a takedown and its lift) go out through the reports outbox like every
-- other webhook event, but are about an owner, not a screening: a report's screening is
-- now optional. SQLite cannot drop NOT NULL in place, so the table is rebuilt.
CREATE TABLE reports_new (
    id              TEXT PRIMARY KEY,
    screening_id    TEXT REFERENCES screenings (id),
    idempotency_key TEXT NOT NULL UNIQUE CHECK (length(idempotency_key) > 0),
    kind            TEXT NOT NULL,
    payload         TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    last_error      TEXT,
    created_at      TEXT NOT NULL,
    delivered_at    TEXT
);
INSERT INTO reports_new (id, screening_id, idempotency_key, kind, payload, state, attempts,
                         next_attempt_at, last_error, created_at, delivered_at)
    SELECT id, screening_id, idempotency_key, kind, payload, state, attempts,
           next_attempt_at, last_error, created_at, delivered_at
    FROM reports;
DROP TABLE reports;
ALTER TABLE reports_new RENAME TO reports;
CREATE INDEX reports_due ON reports (state, next_attempt_at);
