-- Backfill checkpoints: one row per (job, artwork), written after the item's screening is
-- recorded. A rerun of the job skips `done` rows; `failed` rows are retried.
CREATE TABLE backfill_items (
    job_id       TEXT NOT NULL,
    artwork_id   TEXT NOT NULL,
    state        TEXT NOT NULL CHECK (state IN ('done', 'failed')),
    screening_id TEXT,
    verdict      TEXT,
    error_kind   TEXT,
    error        TEXT,
    attempts     INTEGER NOT NULL,
    worker       TEXT,
    updated_at   TEXT NOT NULL,
    PRIMARY KEY (job_id, artwork_id)
);
CREATE INDEX backfill_items_state ON backfill_items (job_id, state);

CREATE TABLE backfill_jobs (
    job_id     TEXT PRIMARY KEY,
    manifest   TEXT NOT NULL,
    total      INTEGER NOT NULL,
    created_at TEXT NOT NULL
);
