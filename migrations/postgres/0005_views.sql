-- Screening judges every frame and rendering a viewer is shown, not only the first frame
-- with alpha dropped. `analysis` names how a screening was analysed (the views it made):
-- the verdict cache and `--stale-only` reuse only rows of the current analysis, so a row
-- recorded before views existed ('') is analysed again. `view_pdq` holds the PDQ of each
-- view, as JSON [{"frame", "rendering", "hash", "quality"}], for retroactive matching.
ALTER TABLE screenings ADD COLUMN analysis TEXT NOT NULL DEFAULT '';
ALTER TABLE screenings ADD COLUMN view_pdq TEXT NOT NULL DEFAULT '[]';
