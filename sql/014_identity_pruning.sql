-- A bounded identity store: identity keys stay as long as replay needs them (for ever), but result bodies
-- older than WORKER_RESULT_RETENTION are replaced by the ids they held, in small batches (src/db/prune.ts).
-- `pruned` marks those rows; the partial index finds the next ones to prune without scanning the rest.
ALTER TABLE processed_messages ADD COLUMN pruned boolean NOT NULL DEFAULT false;
CREATE INDEX idx_processed_messages_prunable ON processed_messages (processed_at) WHERE NOT pruned;

-- The ids a result body can still give after pruning: the id, *_id and *_ids fields of its data (an object, or
-- the objects of an array), nothing else.
CREATE FUNCTION pruned_outcome(result json) RETURNS json
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN json_build_object(
  'success', result -> 'success',
  'data', CASE json_typeof(result -> 'data')
    WHEN 'object' THEN (SELECT json_object_agg(key, value) FROM json_each(result -> 'data') WHERE key ~ '(^|_)ids?$')
    WHEN 'array' THEN (
      SELECT json_agg((SELECT json_object_agg(key, value) FROM json_each(e) WHERE key ~ '(^|_)ids?$'))
        FROM json_array_elements(result -> 'data') AS e
       WHERE json_typeof(e) = 'object')
    ELSE NULL END,
  'error', result -> 'error',
  'pruned', true);
