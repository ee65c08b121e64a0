-- Lines of one bank entry share its id (`external_id`): an image-built entry is a pdq, an
-- md5 and region lines. Disabling or enabling an entry by id finds its lines here instead
-- of reading the whole bank.
CREATE INDEX bank_entries_external_id ON bank_entries (bank, external_id)
    WHERE external_id IS NOT NULL;
