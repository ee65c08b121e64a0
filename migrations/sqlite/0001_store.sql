-- coverguard store, SQLite flavour. Timestamps are RFC 3339 UTC text (sortable as written by
-- the store), booleans 0/1, JSON documents as text. Keep in step with ../postgres.

CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
-- Bumped by every bank or entry change; part of the verdict cache key.
INSERT INTO counters (name, value) VALUES ('banks_version', 1);

CREATE TABLE screenings (
    id             TEXT PRIMARY KEY,
    artwork_id     TEXT,
    owner_id       TEXT,
    sha256         TEXT NOT NULL,
    md5            TEXT NOT NULL,
    pdq            TEXT,
    pdq_quality    INTEGER,
    verdict        TEXT NOT NULL,
    model          TEXT NOT NULL,
    policy_version TEXT NOT NULL,
    banks_version  INTEGER NOT NULL,
    record         TEXT NOT NULL,
    context        TEXT NOT NULL,
    created_at     TEXT NOT NULL
);
CREATE INDEX screenings_cache ON screenings (sha256, model, policy_version, banks_version, created_at);
CREATE INDEX screenings_artwork ON screenings (artwork_id, created_at);
CREATE INDEX screenings_owner ON screenings (owner_id);

CREATE TABLE accounts (
    owner_id      TEXT PRIMARY KEY,
    taken_down_at TEXT,
    taken_down_by TEXT
);

CREATE TABLE artworks (
    artwork_id          TEXT PRIMARY KEY,
    owner_id            TEXT,
    latest_screening_id TEXT REFERENCES screenings (id),
    status              TEXT NOT NULL
        CHECK (status IN ('published', 'held', 'quarantined', 'released')),
    updated_at          TEXT NOT NULL
);
CREATE INDEX artworks_owner ON artworks (owner_id);

CREATE TABLE banks (
    name          TEXT PRIMARY KEY,
    signal_types  TEXT NOT NULL, -- JSON array of signal type names
    pdq_threshold INTEGER NOT NULL,
    action        TEXT NOT NULL CHECK (action IN ('block', 'review', 'allow')),
    allow_list    BOOLEAN NOT NULL,
    severity      INTEGER NOT NULL,
    created_at    TEXT NOT NULL
);

CREATE TABLE bank_entries (
    id          TEXT PRIMARY KEY,
    bank        TEXT NOT NULL REFERENCES banks (name) ON DELETE CASCADE,
    signal      TEXT NOT NULL,
    hash        TEXT NOT NULL,
    external_id TEXT,
    disabled    BOOLEAN NOT NULL DEFAULT 0,
    added_at    TEXT NOT NULL,
    UNIQUE (bank, signal, hash)
);

CREATE TABLE quarantine_items (
    id              TEXT PRIMARY KEY,
    sha256          TEXT NOT NULL,
    screening_id    TEXT NOT NULL REFERENCES screenings (id),
    artwork_id      TEXT,
    owner_id        TEXT,
    object_key      TEXT NOT NULL CHECK (length(object_key) > 0),
    retention_until TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    released_at     TEXT,
    released_by     TEXT
);
-- One item per (bytes, artwork); a missing artwork id counts as one artwork.
CREATE UNIQUE INDEX quarantine_items_bytes ON quarantine_items (sha256, COALESCE(artwork_id, ''));
CREATE INDEX quarantine_items_retention ON quarantine_items (retention_until);

CREATE TABLE review_queue (
    id           TEXT PRIMARY KEY,
    screening_id TEXT NOT NULL UNIQUE REFERENCES screenings (id),
    artwork_id   TEXT,
    priority     INTEGER NOT NULL,
    state        TEXT NOT NULL CHECK (state IN ('pending', 'claimed', 'decided')),
    reason       TEXT,
    claimed_by   TEXT,
    claimed_at   TEXT,
    decided_at   TEXT,
    decision     TEXT,
    note         TEXT,
    created_at   TEXT NOT NULL
);
CREATE INDEX review_queue_next ON review_queue (state, priority DESC, created_at);

CREATE TABLE reports (
    id              TEXT PRIMARY KEY,
    screening_id    TEXT NOT NULL REFERENCES screenings (id),
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
CREATE INDEX reports_due ON reports (state, next_attempt_at);

CREATE TABLE audit_log (
    id      TEXT PRIMARY KEY, -- time-ordered
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    subject TEXT NOT NULL,
    detail  TEXT NOT NULL,
    at      TEXT NOT NULL
);
CREATE INDEX audit_log_at ON audit_log (at);

CREATE TABLE api_tokens (
    token_hash TEXT PRIMARY KEY, -- sha256 hex of the bearer secret
    name       TEXT NOT NULL,
    role       TEXT NOT NULL CHECK (role IN ('service', 'admin')),
    created_at TEXT NOT NULL,
    revoked    BOOLEAN NOT NULL DEFAULT 0
);
