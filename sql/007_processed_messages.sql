-- Exactly-once record of applied message identities (CONTRACT "Identity and effects"), written in the
-- same transaction as the effect. Never pruned automatically: request topics keep their data forever,
-- and a replay from the beginning must still find every identity here.
CREATE TABLE processed_messages (
  identity text PRIMARY KEY,
  topic text NOT NULL,
  operation text NOT NULL,
  source_partition integer,
  source_offset bigint,
  -- json, not jsonb: a republished result must be byte-for-byte the one first published.
  result json NOT NULL,
  processed_at timestamptz NOT NULL DEFAULT now()
);
