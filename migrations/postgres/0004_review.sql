-- Reviewer console: people who log in, their sessions, and what the queue needs to filter and
-- order without reading each screening's JSON record. Keep in step with ../sqlite.

CREATE TABLE console_users (
    username      TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL, -- Argon2id PHC string
    role          TEXT NOT NULL CHECK (role IN ('reviewer', 'admin')),
    settings      TEXT NOT NULL, -- JSON {blur, grayscale}
    disabled      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    TIMESTAMPTZ NOT NULL
);

CREATE TABLE console_sessions (
    token_hash TEXT PRIMARY KEY, -- sha256 hex of the cookie secret
    username   TEXT NOT NULL REFERENCES console_users (username) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX console_sessions_expiry ON console_sessions (expires_at);

-- `level` admin = escalated: only admins see and decide it.
ALTER TABLE review_queue ADD COLUMN level TEXT NOT NULL DEFAULT 'reviewer'
    CHECK (level IN ('reviewer', 'admin'));
ALTER TABLE review_queue ADD COLUMN verdict TEXT;
ALTER TABLE review_queue ADD COLUMN owner_id TEXT;
ALTER TABLE review_queue ADD COLUMN top_label TEXT;
ALTER TABLE review_queue ADD COLUMN top_score DOUBLE PRECISION;
-- ",A,B," lists, so one LIKE '%,A,%' filters on both backends.
ALTER TABLE review_queue ADD COLUMN labels TEXT NOT NULL DEFAULT '';
ALTER TABLE review_queue ADD COLUMN banks TEXT NOT NULL DEFAULT '';
ALTER TABLE review_queue ADD COLUMN reason_code TEXT;
CREATE INDEX review_queue_owner ON review_queue (owner_id);
CREATE INDEX audit_log_subject ON audit_log (subject, at);
