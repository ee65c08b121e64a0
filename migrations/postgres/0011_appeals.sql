-- Owners contesting what restricted their art or their account. One appeal per decision
-- appealed (`decision_ref`); decided by someone other than who made that decision.
-- Keep in step with ../sqlite.
CREATE TABLE appeals (
    id                    TEXT PRIMARY KEY,
    -- `screening:<id>` (an automatic block), `review:<id>` (a reviewer's confirm) or
    -- `takedown:<owner>:<when>` (an account takedown).
    decision_ref          TEXT NOT NULL UNIQUE,
    kind                  TEXT NOT NULL
        CHECK (kind IN ('automated_block', 'review_confirm', 'takedown')),
    owner_id              TEXT NOT NULL,
    artwork_id            TEXT,
    screening_id          TEXT REFERENCES screenings (id),
    review_id             TEXT REFERENCES review_queue (id),
    -- Who made the appealed decision; NULL when it was automatic.
    original_actor        TEXT,
    decided_originally_at TIMESTAMPTZ NOT NULL,
    text                  TEXT,
    level                 TEXT NOT NULL CHECK (level IN ('reviewer', 'admin')),
    state                 TEXT NOT NULL CHECK (state IN ('pending', 'decided')),
    outcome               TEXT CHECK (outcome IN ('upheld', 'reversed')),
    reason_code           TEXT,
    note                  TEXT,
    decided_by            TEXT,
    decided_at            TIMESTAMPTZ,
    created_at            TIMESTAMPTZ NOT NULL
);
CREATE INDEX appeals_open ON appeals (state, level, created_at);
CREATE INDEX appeals_owner ON appeals (owner_id);
