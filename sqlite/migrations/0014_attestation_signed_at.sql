-- When a keyless signature was made (a verified log entry or timestamp), in
-- microseconds since the epoch: freshness (max_age) counts from it when it is
-- earlier than reported_at.
ALTER TABLE attestations ADD COLUMN signed_at INTEGER;
