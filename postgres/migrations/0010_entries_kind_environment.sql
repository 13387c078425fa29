-- Entries of one kind in one environment (an environment's compliance
-- notifications for its timeline) without reading its other entries.
CREATE INDEX journal_entries_kind_environment ON journal_entries (kind, environment, idx);
