-- The SQL objects of the seed's storage layer, as its callers and dashboards read them (README "Coming
-- from the Python storage layer"). Ours stay beside them under their own names.

-- 1. Relationships: the seed's rows had discovered_at. Readable again, always equal to created_at.
--    (A stored generated column: PostgreSQL 15 has no virtual ones; adding it rewrites the table once.)
ALTER TABLE pattern_relationships
  ADD COLUMN discovered_at timestamptz GENERATED ALWAYS AS (created_at) STORED;
-- A relationship created without a strength: 0.5, the seed's default (get_related ranks by strength).
ALTER TABLE pattern_relationships ALTER COLUMN strength SET DEFAULT 0.5;

-- 2. Rankings. v_pattern_ranking is ours: every pattern with usage, deprecated ones too, ranked by the Wilson
--    lower bound (006's v_top_patterns until now). The worker's get_top reads it and filters itself.
CREATE VIEW v_pattern_ranking AS
SELECT w.*, row_number() OVER (ORDER BY w.wilson_score DESC, w.usage_count DESC, w.id) AS rank
  FROM (
    SELECT p.id, p.pattern_name, p.pattern_type, p.language, p.category, p.tags, p.confidence_score,
           p.is_deprecated, p.usage_count, p.success_count, p.success_rate, p.avg_quality_improvement,
           p.avg_execution_time_ms, p.last_used_at,
           ((p.success_rate + 1.9208 / p.usage_count
             - 1.96 * sqrt((p.success_rate * (1 - p.success_rate) + 0.9604 / p.usage_count) / p.usage_count))
            / (1 + 3.8416 / p.usage_count))::double precision AS wilson_score
      FROM pattern_templates p
     WHERE p.usage_count >= 1
  ) w;

-- The seed's recent_usage_count: uses of a pattern in the 30 days before now (an index range scan).
CREATE FUNCTION pattern_recent_usage_count(p_pattern_id uuid) RETURNS bigint
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT count(*) FROM pattern_usage_events e
   WHERE e.pattern_id = p_pattern_id AND e.used_at >= now() - interval '30 days'
$$;

--    v_top_patterns is the seed's: the most successful patterns first (its callers read `LIMIT n` without
--    an ORDER BY), without deprecated ones, with the seed's columns (id, pattern_name, pattern_type,
--    language, usage_count, success_rate, confidence_score, avg_quality_improvement, recent_usage_count,
--    last_used_at) among ours. recent_usage_count is computed after the sort, for the rows read only.
CREATE OR REPLACE VIEW v_top_patterns AS
SELECT r.id, r.pattern_name, r.pattern_type, r.language, r.category, r.tags, r.confidence_score,
       r.is_deprecated, r.usage_count, r.success_count, r.success_rate, r.avg_quality_improvement,
       r.avg_execution_time_ms, r.last_used_at, r.wilson_score, r.rank,
       pattern_recent_usage_count(r.id) AS recent_usage_count
  FROM v_pattern_ranking r
 WHERE NOT r.is_deprecated
 ORDER BY r.rank;

-- 3. Quality trends with the seed's column names (id, pattern_name, pattern_type, usage_date, usage_count,
--    avg_quality_improvement, success_rate), ours after them. Columns cannot be renamed in place.
DROP VIEW v_pattern_quality_trends;
CREATE VIEW v_pattern_quality_trends AS
SELECT e.pattern_id AS id, p.pattern_name, p.pattern_type, (e.used_at AT TIME ZONE 'UTC')::date AS usage_date,
       count(*) AS usage_count,
       avg(e.quality_improvement) AS avg_quality_improvement,
       count(*) FILTER (WHERE e.success)::numeric / count(*) AS success_rate,
       e.pattern_id,
       (e.used_at AT TIME ZONE 'UTC')::date AS day,
       count(*) FILTER (WHERE e.success) AS success_count,
       avg(e.quality_before) AS avg_quality_before,
       avg(e.quality_after) AS avg_quality_after,
       avg(e.execution_time_ms) AS avg_execution_time_ms
  FROM pattern_usage_events e
  JOIN pattern_templates p ON p.id = e.pattern_id
 GROUP BY e.pattern_id, p.pattern_name, p.pattern_type, (e.used_at AT TIME ZONE 'UTC')::date;

-- 4. update_pattern_stats(uuid), which the seed's update_stats called: recomputes one pattern's statistics.
--    (The no-argument update_pattern_stats() stays the statistics trigger; the two never clash.)
CREATE FUNCTION update_pattern_stats(p_pattern_id uuid) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM recompute_pattern_stats(p_pattern_id);
END;
$$;

-- 5. compute_pattern_analytics(start, end, pattern_id) returns the stored row's id, as the seed's did.
--    Ours, returning the whole row, is compute_pattern_analytics_row (the worker calls it).
ALTER FUNCTION compute_pattern_analytics(timestamptz, timestamptz, uuid, timestamptz)
  RENAME TO compute_pattern_analytics_row;

CREATE FUNCTION compute_pattern_analytics(
  p_period_start timestamptz,
  p_period_end timestamptz,
  p_pattern_id uuid DEFAULT NULL
) RETURNS uuid
LANGUAGE sql AS $$
  SELECT (compute_pattern_analytics_row(p_period_start, p_period_end, p_pattern_id)).id
$$;

-- 6. A new analytics row's id: the worker derives it from the message identity and hands it over in a
--    transaction-local setting, so a replay stores the same id; any other caller gets a random one.
ALTER TABLE pattern_analytics ALTER COLUMN id
  SET DEFAULT coalesce(nullif(current_setting('pattern_worker.analytics_id', true), '')::uuid, gen_random_uuid());
