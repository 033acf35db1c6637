-- Global analytics without materialising every (pattern, day) row of the period. Before: 660 ms for 1M
-- events over 100,000 patterns (508k rollup rows), mostly rows copied through a plpgsql tuplestore and a
-- temporary table.
--
-- 1. usage_by_pattern_day becomes one SQL statement, which the planner inlines: a pattern filter on it
--    reaches the indexes.
-- 2. Totals and the trend come from per-day sums (usage_by_day) in one statement, the rollup's share summed
--    by a parallel scan.
-- 3. Top patterns: a pattern's usage in any period is at most its all-time usage_count (every event of
--    the pattern, kept by the statistics trigger and recompute_pattern_stats). So only the patterns with
--    the highest usage_count are counted over the period; when the tenth best period count beats the
--    usage_count of every pattern not counted, the top ten are exact. Otherwise (a short period far from
--    most usage) every pattern is counted, as before.
-- 4. The plpgsql functions plan each call for its own period (force_custom_plan): a cached generic plan
--    cannot see that the raw-event part covers two partial days only, and read 400k events instead.

-- First UTC day wholly inside a period starting at p_start.
CREATE FUNCTION usage_first_full_day(p_start timestamptz) RETURNS date
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN p_start = ((p_start AT TIME ZONE 'UTC')::date::timestamp AT TIME ZONE 'UTC')
              THEN (p_start AT TIME ZONE 'UTC')::date
              ELSE (p_start AT TIME ZONE 'UTC')::date + 1 END
$$;

-- Raw events of the partial days at either end of [p_start, p_end), per pattern and UTC day. When the
-- period holds no whole day, that is every event in it. The SQL functions here are marked PARALLEL SAFE
-- because the planner decides on parallelism before it inlines them: one unmarked call rules it out.
CREATE FUNCTION usage_partial_days(p_start timestamptz, p_end timestamptz, p_pattern_id uuid)
RETURNS TABLE (pattern_id uuid, day date, usage_count bigint, success_count bigint,
               execution_time_sum numeric, execution_time_count bigint,
               quality_improvement_sum numeric, quality_improvement_count bigint)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT e.pattern_id, (e.used_at AT TIME ZONE 'UTC')::date, count(*), count(*) FILTER (WHERE e.success),
         coalesce(sum(e.execution_time_ms), 0), count(e.execution_time_ms),
         coalesce(sum(e.quality_improvement), 0), count(e.quality_improvement)
    FROM pattern_usage_events e
   WHERE (p_pattern_id IS NULL OR e.pattern_id = p_pattern_id)
     AND e.used_at >= p_start AND e.used_at < p_end
     AND (e.used_at < (usage_first_full_day(p_start)::timestamp AT TIME ZONE 'UTC')
          OR e.used_at >= ((p_end AT TIME ZONE 'UTC')::date::timestamp AT TIME ZONE 'UTC'))
   GROUP BY 1, 2
$$;

-- Whole days in [first full day, day of p_end) come from pattern_usage_daily, the partial days at either
-- end from raw events. When there is no whole day the rollup range is empty.
CREATE OR REPLACE FUNCTION usage_by_pattern_day(p_start timestamptz, p_end timestamptz, p_pattern_id uuid)
RETURNS TABLE (pattern_id uuid, day date, usage_count bigint, success_count bigint,
               execution_time_sum numeric, execution_time_count bigint,
               quality_improvement_sum numeric, quality_improvement_count bigint)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT d.pattern_id, d.day, d.usage_count, d.success_count, d.execution_time_sum, d.execution_time_count,
         d.quality_improvement_sum, d.quality_improvement_count
    FROM pattern_usage_daily d
   WHERE d.day >= usage_first_full_day(p_start) AND d.day < (p_end AT TIME ZONE 'UTC')::date
     AND (p_pattern_id IS NULL OR d.pattern_id = p_pattern_id)
  UNION ALL
  SELECT * FROM usage_partial_days(p_start, p_end, p_pattern_id)
$$;

-- The same usage summed per UTC day. The rollup is summed per day before the parts are combined, so its
-- share is a parallel aggregate; plpgsql runs a RETURN QUERY in parallel, where SELECT INTO never is.
CREATE FUNCTION usage_by_day(p_start timestamptz, p_end timestamptz, p_pattern_id uuid)
RETURNS TABLE (day date, usage_count numeric, success_count numeric,
               execution_time_sum numeric, execution_time_count numeric,
               quality_improvement_sum numeric, quality_improvement_count numeric)
LANGUAGE plpgsql STABLE SET plan_cache_mode = force_custom_plan AS $$
BEGIN
  RETURN QUERY SELECT u.day, sum(u.n), sum(u.ok), sum(u.esum), sum(u.en), sum(u.qsum), sum(u.qn)
    FROM (SELECT d.day, sum(d.usage_count) AS n, sum(d.success_count) AS ok,
                 sum(d.execution_time_sum) AS esum, sum(d.execution_time_count) AS en,
                 sum(d.quality_improvement_sum) AS qsum, sum(d.quality_improvement_count) AS qn
            FROM pattern_usage_daily d
           WHERE d.day >= usage_first_full_day(p_start) AND d.day < (p_end AT TIME ZONE 'UTC')::date
             AND (p_pattern_id IS NULL OR d.pattern_id = p_pattern_id)
           GROUP BY d.day
          UNION ALL
          SELECT r.day, r.usage_count, r.success_count, r.execution_time_sum, r.execution_time_count,
                 r.quality_improvement_sum, r.quality_improvement_count
            FROM usage_partial_days(p_start, p_end, p_pattern_id) r) u
   GROUP BY u.day;
END;
$$;

-- The patterns with the highest all-time usage_count (a parallel scan, for the same reason).
CREATE FUNCTION most_used_patterns(p_limit int) RETURNS TABLE (pattern_id uuid, usage_count bigint)
LANGUAGE plpgsql STABLE AS $$
BEGIN
  RETURN QUERY SELECT p.id, p.usage_count FROM pattern_templates p WHERE p.usage_count > 0
                ORDER BY p.usage_count DESC LIMIT p_limit;
END;
$$;

-- Usage per pattern over the period; a filter on pattern_id reaches the indexes once inlined.
CREATE FUNCTION usage_by_pattern(p_start timestamptz, p_end timestamptz)
RETURNS TABLE (pattern_id uuid, usage_count numeric, success_count numeric)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT b.pattern_id, sum(b.usage_count), sum(b.success_count)
    FROM usage_by_pattern_day(p_start, p_end, NULL) b
   GROUP BY b.pattern_id
$$;

CREATE OR REPLACE FUNCTION compute_pattern_analytics(
  p_period_start timestamptz,
  p_period_end timestamptz,
  p_pattern_id uuid DEFAULT NULL,
  p_computed_at timestamptz DEFAULT now()
) RETURNS pattern_analytics
LANGUAGE plpgsql SET plan_cache_mode = force_custom_plan AS $$
DECLARE
  candidate_limit constant int := 200;
  totals record;
  top jsonb := '[]';
  candidates uuid[];
  lowest_bound bigint;
  ranked jsonb;
  direction text;
  strength numeric;
  stored pattern_analytics;
BEGIN
  IF p_period_end <= p_period_start THEN
    RAISE EXCEPTION 'period_end must be after period_start' USING ERRCODE = '22023';
  END IF;

  -- Trend: least squares of daily usage counts against the day index over every UTC day the period
  -- touches (days without usage count as 0); strength is r squared.
  SELECT coalesce(sum(u.n), 0) AS n, coalesce(sum(u.ok), 0) AS ok, sum(u.esum) AS esum, sum(u.en) AS en,
         sum(u.qsum) AS qsum, sum(u.qn) AS qn,
         regr_slope(coalesce(u.n, 0), s.i) AS slope, regr_r2(coalesce(u.n, 0), s.i) AS r2, count(*) AS days
    INTO totals
    FROM (SELECT d::date AS day, row_number() OVER (ORDER BY d) AS i
            FROM generate_series((p_period_start AT TIME ZONE 'UTC')::date,
                                 ((p_period_end - interval '1 microsecond') AT TIME ZONE 'UTC')::date,
                                 interval '1 day') AS d) s
    LEFT JOIN (SELECT b.day, b.usage_count AS n, b.success_count AS ok, b.execution_time_sum AS esum,
                      b.execution_time_count AS en, b.quality_improvement_sum AS qsum,
                      b.quality_improvement_count AS qn
                 FROM usage_by_day(p_period_start, p_period_end, p_pattern_id) b) u ON u.day = s.day;

  IF p_pattern_id IS NULL AND totals.n > 0 THEN
    SELECT array_agg(c.pattern_id), min(c.usage_count) INTO candidates, lowest_bound
      FROM most_used_patterns(candidate_limit) c;
    SELECT jsonb_agg(to_jsonb(c) ORDER BY c.usage_count DESC, c.pattern_id) INTO ranked
      FROM (SELECT * FROM usage_by_pattern(p_period_start, p_period_end) u WHERE u.pattern_id = ANY (candidates)
             ORDER BY u.usage_count DESC, u.pattern_id LIMIT 10) c;
    -- Exact unless an uncounted pattern could tie or beat the tenth (ties order by pattern id).
    IF cardinality(candidates) = candidate_limit
       AND coalesce((ranked -> 9 ->> 'usage_count')::bigint, 0) <= lowest_bound THEN
      SELECT jsonb_agg(to_jsonb(c) ORDER BY c.usage_count DESC, c.pattern_id) INTO ranked
        FROM (SELECT * FROM usage_by_pattern(p_period_start, p_period_end) u
               ORDER BY u.usage_count DESC, u.pattern_id LIMIT 10) c;
    END IF;
    SELECT coalesce(jsonb_agg(t.r || jsonb_build_object('pattern_name', p.pattern_name,
             'success_rate', round((t.r ->> 'success_count')::numeric / (t.r ->> 'usage_count')::numeric, 6))
             ORDER BY t.rank), '[]')
      INTO top
      FROM jsonb_array_elements(ranked) WITH ORDINALITY AS t(r, rank)
      JOIN pattern_templates p ON p.id = (t.r ->> 'pattern_id')::uuid;
  END IF;

  IF totals.n = 0 OR totals.days < 2 THEN
    direction := 'insufficient_data';
    strength := 0;
  ELSIF coalesce(totals.slope, 0) = 0 OR coalesce(totals.r2, 0) < 0.1 THEN
    direction := 'stable';
    strength := CASE WHEN coalesce(totals.slope, 0) = 0 THEN 0 ELSE round(totals.r2::numeric, 6) END;
  ELSE
    direction := CASE WHEN totals.slope > 0 THEN 'increasing' ELSE 'decreasing' END;
    strength := round(totals.r2::numeric, 6);
  END IF;

  INSERT INTO pattern_analytics AS a (period_start, period_end, pattern_id, total_usage_count, success_count,
      failure_count, success_rate, average_execution_time_ms, average_quality_improvement, top_patterns,
      trend_direction, trend_strength, computed_at)
  VALUES (p_period_start, p_period_end, p_pattern_id, totals.n, totals.ok, totals.n - totals.ok,
      CASE WHEN totals.n = 0 THEN NULL ELSE totals.ok::numeric / totals.n END,
      CASE WHEN coalesce(totals.en, 0) = 0 THEN NULL ELSE totals.esum / totals.en END,
      CASE WHEN coalesce(totals.qn, 0) = 0 THEN NULL ELSE totals.qsum / totals.qn END,
      top, direction, strength, p_computed_at)
  ON CONFLICT (pattern_id, period_start, period_end) DO UPDATE SET
    total_usage_count = EXCLUDED.total_usage_count, success_count = EXCLUDED.success_count,
    failure_count = EXCLUDED.failure_count, success_rate = EXCLUDED.success_rate,
    average_execution_time_ms = EXCLUDED.average_execution_time_ms,
    average_quality_improvement = EXCLUDED.average_quality_improvement, top_patterns = EXCLUDED.top_patterns,
    trend_direction = EXCLUDED.trend_direction, trend_strength = EXCLUDED.trend_strength,
    computed_at = EXCLUDED.computed_at
  RETURNING a.* INTO stored;
  RETURN stored;
END;
$$;
