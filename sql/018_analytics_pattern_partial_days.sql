-- usage_by_pattern_day's partial days from their smaller side (issue 23), as 017 did for usage_by_day and
-- usage_of_patterns. usage_by_pattern_day (011) is what the global get_effectiveness ranking and the quality
-- trends of a period read, per (pattern, UTC day); until now it read a period's partial first and last days
-- as raw events: for the default period (the 30 days before now) every event of today so far, and the tail
-- of the day 30 days ago. Now it follows usage_period_plan (017): whole days from pattern_usage_daily, a
-- partial day either from the raw events inside the period or from the day's rollup rows minus the raw events
-- outside it, whichever side the hourly rollup says is smaller. For a period ending now, the outside of its
-- last day is the rest of today, which holds no events yet. Same signature and the same rows for every
-- (pattern, day) with usage in the period.
--
-- Still one SQL statement, so that the planner inlines it into its callers (011): a pattern filter or an
-- ORDER BY ... LIMIT in the caller reaches the rollup's indexes. Three parts:
--   1. rollup rows of the plan's days, except the days read as "row minus outside";
--   2. raw events of the plan's added ranges, per (pattern, day);
--   3. the rollup rows of the "row minus outside" days, minus their raw events outside the period, per
--      (pattern, day); a pattern whose events of that day all fall outside the period has no row.

-- The plan only reads (017 left it parallel unsafe, the default), so a caller's statement may run in parallel.
ALTER FUNCTION usage_period_plan(timestamptz, timestamptz) PARALLEL SAFE;

CREATE OR REPLACE FUNCTION usage_by_pattern_day(p_start timestamptz, p_end timestamptz, p_pattern_id uuid)
RETURNS TABLE (pattern_id uuid, day date, usage_count bigint, success_count bigint,
               execution_time_sum numeric, execution_time_count bigint,
               quality_improvement_sum numeric, quality_improvement_count bigint)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  WITH x AS MATERIALIZED (SELECT * FROM usage_period_plan(p_start, p_end)),
  -- The days read as their rollup row minus the events outside the period (none, one or, for a period
  -- within one day, that day once).
  sub_days AS (
    SELECT DISTINCT (s.t0 AT TIME ZONE 'UTC')::date AS day
      FROM x CROSS JOIN LATERAL (VALUES (x.sub1_from, x.sub1_to), (x.sub2_from, x.sub2_to)) AS s (t0, t1)
     WHERE s.t1 > s.t0
  ),
  outside AS (
    SELECT e.pattern_id, (e.used_at AT TIME ZONE 'UTC')::date AS day, count(*) AS n,
           count(*) FILTER (WHERE e.success) AS ok,
           coalesce(sum(e.execution_time_ms), 0) AS esum, count(e.execution_time_ms) AS en,
           coalesce(sum(e.quality_improvement), 0) AS qsum, count(e.quality_improvement) AS qn
      FROM x CROSS JOIN LATERAL (VALUES (x.sub1_from, x.sub1_to), (x.sub2_from, x.sub2_to)) AS s (t0, t1)
      JOIN pattern_usage_events e
        ON (p_pattern_id IS NULL OR e.pattern_id = p_pattern_id) AND e.used_at >= s.t0 AND e.used_at < s.t1
     WHERE s.t1 > s.t0
     GROUP BY 1, 2
  )
  SELECT d.pattern_id, d.day, d.usage_count, d.success_count, d.execution_time_sum, d.execution_time_count,
         d.quality_improvement_sum, d.quality_improvement_count
    FROM x JOIN pattern_usage_daily d ON d.day >= x.day_from AND d.day < x.day_to
   WHERE (p_pattern_id IS NULL OR d.pattern_id = p_pattern_id)
     AND d.day NOT IN (SELECT sd.day FROM sub_days sd)
  UNION ALL
  SELECT e.pattern_id, (e.used_at AT TIME ZONE 'UTC')::date, count(*), count(*) FILTER (WHERE e.success),
         coalesce(sum(e.execution_time_ms), 0), count(e.execution_time_ms),
         coalesce(sum(e.quality_improvement), 0), count(e.quality_improvement)
    FROM x CROSS JOIN LATERAL (VALUES (x.add1_from, x.add1_to), (x.add2_from, x.add2_to)) AS s (t0, t1)
    JOIN pattern_usage_events e
      ON (p_pattern_id IS NULL OR e.pattern_id = p_pattern_id) AND e.used_at >= s.t0 AND e.used_at < s.t1
   WHERE s.t1 > s.t0
   GROUP BY 1, 2
  UNION ALL
  SELECT d.pattern_id, d.day, d.usage_count - coalesce(o.n, 0), d.success_count - coalesce(o.ok, 0),
         d.execution_time_sum - coalesce(o.esum, 0), d.execution_time_count - coalesce(o.en, 0),
         d.quality_improvement_sum - coalesce(o.qsum, 0), d.quality_improvement_count - coalesce(o.qn, 0)
    FROM sub_days sd
    JOIN pattern_usage_daily d ON d.day = sd.day AND (p_pattern_id IS NULL OR d.pattern_id = p_pattern_id)
    LEFT JOIN outside o ON o.pattern_id = d.pattern_id AND o.day = d.day
   WHERE d.usage_count - coalesce(o.n, 0) > 0
$$;
