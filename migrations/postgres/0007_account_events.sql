-- Account events (a takedown and its lift) go out through the reports outbox like every
-- other webhook event, but are about an owner, not a screening: a report's screening is
-- now optional.
ALTER TABLE reports ALTER COLUMN screening_id DROP NOT NULL;
