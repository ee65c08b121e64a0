-- Reports from the platform's report flow: people who saw an artwork, or an owner's art, and
-- said why. One row per reporter and subject (a second report of the same thing is the
-- same report); `user_report_items` says which review item each covered artwork joined.
-- Keep in step with ../postgres.
CREATE TABLE user_reports (
    id            TEXT PRIMARY KEY,
    reporter_kind TEXT NOT NULL
        CHECK (reporter_kind IN ('user', 'guardian', 'trusted_flagger', 'law_enforcement')),
    reporter_ref  TEXT NOT NULL CHECK (length(reporter_ref) > 0),
    category      TEXT NOT NULL
        CHECK (category IN ('minor_sexual', 'adult_nudity', 'grooming', 'other')),
    subject_kind  TEXT NOT NULL CHECK (subject_kind IN ('artwork', 'owner')),
    subject_id    TEXT NOT NULL CHECK (length(subject_id) > 0),
    text          TEXT,
    created_at    TEXT NOT NULL,
    UNIQUE (reporter_ref, subject_kind, subject_id)
);
CREATE INDEX user_reports_created ON user_reports (created_at);

CREATE TABLE user_report_items (
    report_id  TEXT NOT NULL REFERENCES user_reports (id),
    review_id  TEXT NOT NULL REFERENCES review_queue (id),
    artwork_id TEXT NOT NULL,
    -- What this report added to the item's priority (the most any report on it adds counts).
    priority   INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (report_id, review_id)
);
CREATE INDEX user_report_items_review ON user_report_items (review_id);
CREATE INDEX user_report_items_artwork ON user_report_items (report_id, artwork_id);
