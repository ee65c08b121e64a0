-- A bank's category says what its hits are, for reports: a hit on a `csam` bank also
-- produces a CyberTipline-shaped report. NULL: uncategorised.
ALTER TABLE banks ADD COLUMN category TEXT;
