CREATE TABLE pattern_analytics (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  period_start timestamptz NOT NULL,
  period_end timestamptz NOT NULL,
  -- NULL: global analytics over all patterns.
  pattern_id uuid REFERENCES pattern_templates (id) ON DELETE CASCADE,
  total_usage_count bigint NOT NULL,
  success_count bigint NOT NULL,
  failure_count bigint NOT NULL,
  success_rate numeric CHECK (success_rate BETWEEN 0 AND 1),
  average_execution_time_ms numeric,
  average_quality_improvement numeric,
  top_patterns jsonb NOT NULL DEFAULT '[]',
  trend_direction text NOT NULL
    CHECK (trend_direction IN ('increasing', 'decreasing', 'stable', 'insufficient_data')),
  trend_strength numeric NOT NULL DEFAULT 0 CHECK (trend_strength BETWEEN 0 AND 1),
  computed_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT pattern_analytics_period CHECK (period_end > period_start),
  CONSTRAINT pattern_analytics_one_per_period UNIQUE NULLS NOT DISTINCT (pattern_id, period_start, period_end)
);
CREATE INDEX idx_pattern_analytics_pattern ON pattern_analytics (pattern_id, period_end DESC);

-- Per UTC day usage over [p_start, p_end), for one pattern or all. Whole days come from
-- pattern_usage_daily, so the cost is bounded by days x active patterns; only the partial first and
-- last day read raw events (through the used_at indexes).
CREATE FUNCTION usage_by_pattern_day(p_start timestamptz, p_end timestamptz, p_pattern_id uuid)
RETURNS TABLE (pattern_id uuid, day date, usage_count bigint, success_count bigint,
               execution_time_sum numeric, execution_time_count bigint,
               quality_improvement_sum numeric, quality_improvement_count bigint)
LANGUAGE plpgsql STABLE AS $$
DECLARE
  start_day date := (p_start AT TIME ZONE 'UTC')::date;
  first_full date := CASE WHEN p_start = (start_day::timestamp AT TIME ZONE 'UTC') THEN start_day ELSE start_day + 1 END;
  end_full date := (p_end AT TIME ZONE 'UTC')::date;   -- days before this end before p_end
  full_from timestamptz;
  full_to timestamptz;
BEGIN
  IF end_full <= first_full THEN
    first_full := end_full;   -- no whole day: everything from raw events
    full_from := p_end;
    full_to := p_end;
  ELSE
    full_from := first_full::timestamp AT TIME ZONE 'UTC';
    full_to := end_full::timestamp AT TIME ZONE 'UTC';
  END IF;
  RETURN QUERY
    SELECT d.pattern_id, d.day, d.usage_count, d.success_count, d.execution_time_sum, d.execution_time_count,
           d.quality_improvement_sum, d.quality_improvement_count
      FROM pattern_usage_daily d
     WHERE d.day >= first_full AND d.day < end_full
       AND (p_pattern_id IS NULL OR d.pattern_id = p_pattern_id)
    UNION ALL
    SELECT e.pattern_id, (e.used_at AT TIME ZONE 'UTC')::date, count(*), count(*) FILTER (WHERE e.success),
           coalesce(sum(e.execution_time_ms), 0), count(e.execution_time_ms),
           coalesce(sum(e.quality_improvement), 0), count(e.quality_improvement)
      FROM pattern_usage_events e
     WHERE (p_pattern_id IS NULL OR e.pattern_id = p_pattern_id)
       AND ((e.used_at >= p_start AND e.used_at < LEAST(full_from, p_end))
         OR (e.used_at >= GREATEST(full_to, p_start) AND e.used_at < p_end))
     GROUP BY 1, 2;
END;
$$;

-- Computes, stores (one row per pattern-or-global and period) and returns analytics for
-- [p_period_start, p_period_end). Trend: least squares of daily usage counts against the day index
-- over every UTC day the period touches (days without usage count as 0); strength is r squared.
CREATE FUNCTION compute_pattern_analytics(
  p_period_start timestamptz,
  p_period_end timestamptz,
  p_pattern_id uuid DEFAULT NULL,
  p_computed_at timestamptz DEFAULT now()
) RETURNS pattern_analytics
LANGUAGE plpgsql AS $$
DECLARE
  totals record;
  trend record;
  top jsonb := '[]';
  direction text;
  strength numeric;
  stored pattern_analytics;
BEGIN
  IF p_period_end <= p_period_start THEN
    RAISE EXCEPTION 'period_end must be after period_start' USING ERRCODE = '22023';
  END IF;

  CREATE TEMP TABLE IF NOT EXISTS pg_temp.analytics_days (LIKE pattern_usage_daily) ON COMMIT DROP;
  TRUNCATE pg_temp.analytics_days;
  INSERT INTO pg_temp.analytics_days SELECT * FROM usage_by_pattern_day(p_period_start, p_period_end, p_pattern_id);

  SELECT coalesce(sum(usage_count), 0) AS n, coalesce(sum(success_count), 0) AS ok,
         sum(execution_time_sum) AS esum, sum(execution_time_count) AS en,
         sum(quality_improvement_sum) AS qsum, sum(quality_improvement_count) AS qn
    INTO totals FROM pg_temp.analytics_days;

  IF p_pattern_id IS NULL AND totals.n > 0 THEN
    SELECT coalesce(jsonb_agg(jsonb_build_object(
             'pattern_id', t.pattern_id, 'pattern_name', p.pattern_name, 'usage_count', t.n,
             'success_count', t.ok, 'success_rate', round(t.ok::numeric / t.n, 6))
             ORDER BY t.n DESC, t.pattern_id), '[]')
      INTO top
      FROM (SELECT pattern_id, sum(usage_count) AS n, sum(success_count) AS ok
              FROM pg_temp.analytics_days GROUP BY pattern_id
             ORDER BY n DESC, pattern_id LIMIT 10) t
      JOIN pattern_templates p ON p.id = t.pattern_id;
  END IF;

  SELECT regr_slope(coalesce(u.n, 0), s.i) AS slope, regr_r2(coalesce(u.n, 0), s.i) AS r2, count(*) AS days
    INTO trend
    FROM (SELECT d::date AS day, row_number() OVER (ORDER BY d) AS i
            FROM generate_series((p_period_start AT TIME ZONE 'UTC')::date,
                                 ((p_period_end - interval '1 microsecond') AT TIME ZONE 'UTC')::date,
                                 interval '1 day') AS d) s
    LEFT JOIN (SELECT day, sum(usage_count) AS n FROM pg_temp.analytics_days GROUP BY day) u ON u.day = s.day;

  IF totals.n = 0 OR trend.days < 2 THEN
    direction := 'insufficient_data';
    strength := 0;
  ELSIF coalesce(trend.slope, 0) = 0 OR coalesce(trend.r2, 0) < 0.1 THEN
    direction := 'stable';
    strength := CASE WHEN coalesce(trend.slope, 0) = 0 THEN 0 ELSE round(trend.r2::numeric, 6) END;
  ELSE
    direction := CASE WHEN trend.slope > 0 THEN 'increasing' ELSE 'decreasing' END;
    strength := round(trend.r2::numeric, 6);
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
