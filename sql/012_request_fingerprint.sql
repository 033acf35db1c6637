-- A fingerprint of the canonical request beside each identity, so that a correlation id reused with a
-- different request is refused (CONFLICT) instead of silently answered with the first request's result.
-- Rows from before have none: their repeats are answered as before.
ALTER TABLE processed_messages ADD COLUMN fingerprint text;
