-- Banks at size: listing banks reads counters instead of every entry, a bulk import is
-- written in short transactions and published in one step, and single-entry changes are
-- logged per banks version so every process can patch its in-memory index instead of
-- rebuilding it from all entries.

-- Entries of each bank (published ones only) and how many of them are disabled, kept by
-- every write that adds, removes, disables, enables or publishes entries.
ALTER TABLE banks ADD COLUMN entry_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE banks ADD COLUMN disabled_count INTEGER NOT NULL DEFAULT 0;
UPDATE banks SET
    entry_count = (SELECT COUNT(*) FROM bank_entries e WHERE e.bank = banks.name),
    disabled_count = (SELECT COUNT(*) FROM bank_entries e
                      WHERE e.bank = banks.name AND e.disabled = TRUE);

-- A bulk import: its rows carry its id and stay invisible (to screening, listing and every
-- entry operation) until `published` flips, in the same transaction as the version bump.
CREATE TABLE bank_imports (
    id         TEXT PRIMARY KEY,
    bank       TEXT NOT NULL,
    added      INTEGER NOT NULL DEFAULT 0,
    published  BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TEXT NOT NULL
);
ALTER TABLE bank_entries ADD COLUMN import_id TEXT;
CREATE INDEX bank_entries_import ON bank_entries (import_id) WHERE import_id IS NOT NULL;

-- What one banks version changed in the matched set, as JSON
-- [{"bank", "signal", "hash", "matched_as"}] (`matched_as` null: the entry stopped
-- matching). A version with no row here (bank settings, imports, large adds) means: rebuild
-- from a snapshot. Only recent versions are kept.
CREATE TABLE bank_changes (
    version INTEGER PRIMARY KEY,
    ops     TEXT NOT NULL
);
