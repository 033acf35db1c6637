-- Analytics at the cost of a lookup (issue 23). Global totals come from rollups maintained as usage is
-- recorded, without a hot row: every counter is split into slots, a writing transaction takes the first
-- slot no other transaction holds (FOR UPDATE SKIP LOCKED) and writes only that slot's rows, and reads
-- sum the slots. Concurrent usage batches therefore never wait on each other for a counter.
--
-- 1. usage_global_hourly: events per UTC hour (and slot). A global read of a period sums its whole hours
--    here and reads raw events only for the partial hour at either end: O(hours in the period).
-- 2. pattern_counters: all-time per-pattern aggregates (patterns, deprecated ones, confidence sum,
--    patterns used, sum of their success rates, relationships), kept by statement triggers.
-- 3. Top patterns of a period: per-day candidates from pattern_usage_daily's (day, usage_count) index with
--    an exactness bound, instead of summing every (pattern, day) row of the period.
-- Existing databases are back-filled below (into slot 0).

CREATE TABLE analytics_slots (slot smallint PRIMARY KEY);
INSERT INTO analytics_slots SELECT generate_series(0, 63);

-- The slot this transaction writes: the lowest one no other open transaction holds. Re-entrant (a
-- transaction's own lock does not block it). With all 64 held it shares one, which only waits.
CREATE FUNCTION analytics_slot() RETURNS smallint
LANGUAGE plpgsql AS $$
DECLARE
  taken smallint;
BEGIN
  SELECT s.slot INTO taken FROM analytics_slots s ORDER BY s.slot LIMIT 1 FOR UPDATE SKIP LOCKED;
  RETURN coalesce(taken, (pg_backend_pid() % 64)::smallint);
END;
$$;

CREATE TABLE usage_global_hourly (
  hour timestamptz NOT NULL,
  slot smallint NOT NULL,
  usage_count bigint NOT NULL,
  success_count bigint NOT NULL,
  execution_time_sum numeric NOT NULL,
  execution_time_count bigint NOT NULL,
  quality_improvement_sum numeric NOT NULL,
  quality_improvement_count bigint NOT NULL,
  PRIMARY KEY (hour, slot)
);

CREATE TABLE pattern_counters (
  slot smallint PRIMARY KEY,
  total_patterns bigint NOT NULL DEFAULT 0,
  deprecated_patterns bigint NOT NULL DEFAULT 0,
  confidence_sum numeric NOT NULL DEFAULT 0,
  confidence_count bigint NOT NULL DEFAULT 0,
  used_patterns bigint NOT NULL DEFAULT 0,
  success_rate_sum numeric NOT NULL DEFAULT 0,
  total_relationships bigint NOT NULL DEFAULT 0
);
INSERT INTO pattern_counters (slot) SELECT generate_series(0, 63);

-- The statistics trigger of 008, plus the hourly rollup and the counters of patterns used and of their
-- success rates (from the statistics UPDATE's own rows: the old rate is recomputed from the old counts
-- with the same expression that stored it, so the sum stays exact).
CREATE OR REPLACE FUNCTION update_pattern_stats() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  my_slot smallint;
  newly_used bigint;
  rate_delta numeric;
BEGIN
  PERFORM 1 FROM pattern_templates
    WHERE id IN (SELECT DISTINCT pattern_id FROM new_events)
    ORDER BY id FOR NO KEY UPDATE;

  WITH batch AS (
    SELECT pattern_id,
           count(*) AS n,
           count(*) FILTER (WHERE success) AS s,
           count(quality_improvement) AS qn,
           coalesce(sum(quality_improvement), 0) AS qsum,
           count(execution_time_ms) AS en,
           coalesce(sum(execution_time_ms), 0) AS esum,
           max(used_at) AS last_used
      FROM new_events
     GROUP BY pattern_id
  ), changed AS (
    UPDATE pattern_templates p SET
      usage_count = p.usage_count + b.n,
      success_count = p.success_count + b.s,
      success_rate = (p.success_count + b.s)::numeric / (p.usage_count + b.n),
      quality_sample_count = p.quality_sample_count + b.qn,
      quality_improvement_sum = p.quality_improvement_sum + b.qsum,
      avg_quality_improvement = CASE WHEN p.quality_sample_count + b.qn = 0 THEN NULL
        ELSE (p.quality_improvement_sum + b.qsum) / (p.quality_sample_count + b.qn) END,
      execution_sample_count = p.execution_sample_count + b.en,
      execution_time_sum = p.execution_time_sum + b.esum,
      avg_execution_time_ms = CASE WHEN p.execution_sample_count + b.en = 0 THEN NULL
        ELSE (p.execution_time_sum + b.esum) / (p.execution_sample_count + b.en) END,
      last_used_at = GREATEST(p.last_used_at, b.last_used)
    FROM batch b
    WHERE p.id = b.pattern_id
    RETURNING p.usage_count AS n_new, p.success_count AS s_new, p.success_rate AS r_new, b.n, b.s
  )
  SELECT count(*) FILTER (WHERE c.n_new = c.n),
         coalesce(sum(c.r_new - CASE WHEN c.n_new = c.n THEN 0
                                     ELSE (c.s_new - c.s)::numeric / (c.n_new - c.n) END), 0)
    INTO newly_used, rate_delta
    FROM changed c;

  INSERT INTO pattern_usage_daily AS d
    (pattern_id, day, usage_count, success_count, execution_time_sum, execution_time_count,
     quality_improvement_sum, quality_improvement_count)
  SELECT pattern_id, (used_at AT TIME ZONE 'UTC')::date, count(*), count(*) FILTER (WHERE success),
         coalesce(sum(execution_time_ms), 0), count(execution_time_ms),
         coalesce(sum(quality_improvement), 0), count(quality_improvement)
    FROM new_events
   GROUP BY 1, 2
   ORDER BY 1, 2
  ON CONFLICT (pattern_id, day) DO UPDATE SET
    usage_count = d.usage_count + EXCLUDED.usage_count,
    success_count = d.success_count + EXCLUDED.success_count,
    execution_time_sum = d.execution_time_sum + EXCLUDED.execution_time_sum,
    execution_time_count = d.execution_time_count + EXCLUDED.execution_time_count,
    quality_improvement_sum = d.quality_improvement_sum + EXCLUDED.quality_improvement_sum,
    quality_improvement_count = d.quality_improvement_count + EXCLUDED.quality_improvement_count;

  my_slot := analytics_slot();
  INSERT INTO usage_global_hourly AS g
    (hour, slot, usage_count, success_count, execution_time_sum, execution_time_count,
     quality_improvement_sum, quality_improvement_count)
  SELECT date_trunc('hour', e.used_at, 'UTC'), my_slot, count(*), count(*) FILTER (WHERE e.success),
         coalesce(sum(e.execution_time_ms), 0), count(e.execution_time_ms),
         coalesce(sum(e.quality_improvement), 0), count(e.quality_improvement)
    FROM new_events e
   GROUP BY 1
   ORDER BY 1
  ON CONFLICT (hour, slot) DO UPDATE SET
    usage_count = g.usage_count + EXCLUDED.usage_count,
    success_count = g.success_count + EXCLUDED.success_count,
    execution_time_sum = g.execution_time_sum + EXCLUDED.execution_time_sum,
    execution_time_count = g.execution_time_count + EXCLUDED.execution_time_count,
    quality_improvement_sum = g.quality_improvement_sum + EXCLUDED.quality_improvement_sum,
    quality_improvement_count = g.quality_improvement_count + EXCLUDED.quality_improvement_count;

  IF newly_used <> 0 OR rate_delta <> 0 THEN
    UPDATE pattern_counters SET used_patterns = used_patterns + newly_used,
                                success_rate_sum = success_rate_sum + rate_delta
     WHERE slot = my_slot;
  END IF;
  RETURN NULL;
END;
$$;

-- Events deleted (with their pattern, by cascade): out of the hourly rollup.
CREATE FUNCTION usage_events_deleted() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  my_slot smallint := analytics_slot();
BEGIN
  INSERT INTO usage_global_hourly AS g
    (hour, slot, usage_count, success_count, execution_time_sum, execution_time_count,
     quality_improvement_sum, quality_improvement_count)
  SELECT date_trunc('hour', e.used_at, 'UTC'), my_slot, -count(*), -count(*) FILTER (WHERE e.success),
         -coalesce(sum(e.execution_time_ms), 0), -count(e.execution_time_ms),
         -coalesce(sum(e.quality_improvement), 0), -count(e.quality_improvement)
    FROM old_events e
   GROUP BY 1
   ORDER BY 1
  ON CONFLICT (hour, slot) DO UPDATE SET
    usage_count = g.usage_count + EXCLUDED.usage_count,
    success_count = g.success_count + EXCLUDED.success_count,
    execution_time_sum = g.execution_time_sum + EXCLUDED.execution_time_sum,
    execution_time_count = g.execution_time_count + EXCLUDED.execution_time_count,
    quality_improvement_sum = g.quality_improvement_sum + EXCLUDED.quality_improvement_sum,
    quality_improvement_count = g.quality_improvement_count + EXCLUDED.quality_improvement_count;
  RETURN NULL;
END;
$$;
CREATE TRIGGER trg_usage_events_deleted
  AFTER DELETE ON pattern_usage_events
  REFERENCING OLD TABLE AS old_events
  FOR EACH STATEMENT EXECUTE FUNCTION usage_events_deleted();

-- Patterns inserted or deleted: their share of the counters, added or taken away.
CREATE FUNCTION pattern_counters_add(p_sign int, p_patterns bigint, p_deprecated bigint, p_conf_sum numeric,
                                     p_conf_count bigint, p_used bigint, p_rate_sum numeric) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  -- Taken once: analytics_slot() is volatile, and in a WHERE clause it would run once per row and could
  -- name another slot at each, so that no row (or two) matched and the update was lost (or doubled).
  my_slot smallint := analytics_slot();
BEGIN
  UPDATE pattern_counters SET
    total_patterns = total_patterns + p_sign * p_patterns,
    deprecated_patterns = deprecated_patterns + p_sign * p_deprecated,
    confidence_sum = confidence_sum + p_sign * p_conf_sum,
    confidence_count = confidence_count + p_sign * p_conf_count,
    used_patterns = used_patterns + p_sign * p_used,
    success_rate_sum = success_rate_sum + p_sign * p_rate_sum
  WHERE slot = my_slot;
END;
$$;

CREATE FUNCTION patterns_inserted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pattern_counters_add(1, count(*), count(*) FILTER (WHERE is_deprecated),
                               coalesce(sum(confidence_score), 0), count(confidence_score),
                               count(*) FILTER (WHERE usage_count > 0),
                               coalesce(sum(success_rate) FILTER (WHERE usage_count > 0), 0))
     FROM new_patterns;
  RETURN NULL;
END;
$$;
CREATE TRIGGER trg_patterns_inserted
  AFTER INSERT ON pattern_templates
  REFERENCING NEW TABLE AS new_patterns
  FOR EACH STATEMENT EXECUTE FUNCTION patterns_inserted();

CREATE FUNCTION patterns_deleted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pattern_counters_add(-1, count(*), count(*) FILTER (WHERE is_deprecated),
                               coalesce(sum(confidence_score), 0), count(confidence_score),
                               count(*) FILTER (WHERE usage_count > 0),
                               coalesce(sum(success_rate) FILTER (WHERE usage_count > 0), 0))
     FROM old_patterns;
  RETURN NULL;
END;
$$;
CREATE TRIGGER trg_patterns_deleted
  AFTER DELETE ON pattern_templates
  REFERENCING OLD TABLE AS old_patterns
  FOR EACH STATEMENT EXECUTE FUNCTION patterns_deleted();

-- A pattern's confidence or deprecation changed (update operations, one row each). The statistics UPDATE
-- sets neither column, so this never fires on the usage path.
CREATE FUNCTION pattern_flags_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  my_slot smallint := analytics_slot();
BEGIN
  UPDATE pattern_counters SET
    deprecated_patterns = deprecated_patterns + NEW.is_deprecated::int - OLD.is_deprecated::int,
    confidence_sum = confidence_sum + coalesce(NEW.confidence_score, 0) - coalesce(OLD.confidence_score, 0),
    confidence_count = confidence_count + (NEW.confidence_score IS NOT NULL)::int
                                        - (OLD.confidence_score IS NOT NULL)::int
  WHERE slot = my_slot;
  RETURN NULL;
END;
$$;
CREATE TRIGGER trg_pattern_flags_changed
  AFTER UPDATE OF confidence_score, is_deprecated ON pattern_templates
  FOR EACH ROW
  WHEN (OLD.confidence_score IS DISTINCT FROM NEW.confidence_score
        OR OLD.is_deprecated IS DISTINCT FROM NEW.is_deprecated)
  EXECUTE FUNCTION pattern_flags_changed();

CREATE FUNCTION relationships_counted() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  n bigint;
  my_slot smallint;
BEGIN
  IF TG_OP = 'INSERT' THEN
    SELECT count(*) INTO n FROM new_relationships;
  ELSE
    SELECT -count(*) INTO n FROM old_relationships;
  END IF;
  IF n <> 0 THEN
    my_slot := analytics_slot();
    UPDATE pattern_counters SET total_relationships = total_relationships + n WHERE slot = my_slot;
  END IF;
  RETURN NULL;
END;
$$;
CREATE TRIGGER trg_relationships_inserted
  AFTER INSERT ON pattern_relationships
  REFERENCING NEW TABLE AS new_relationships
  FOR EACH STATEMENT EXECUTE FUNCTION relationships_counted();
CREATE TRIGGER trg_relationships_deleted
  AFTER DELETE ON pattern_relationships
  REFERENCING OLD TABLE AS old_relationships
  FOR EACH STATEMENT EXECUTE FUNCTION relationships_counted();

-- The repair function of 003 (and the seed's update_pattern_stats(uuid)) rewrites one pattern's
-- statistics: the counters follow its old and new values.
CREATE OR REPLACE FUNCTION recompute_pattern_stats(p_pattern_id uuid) RETURNS pattern_templates
LANGUAGE plpgsql AS $$
DECLARE
  before pattern_templates;
  updated pattern_templates;
  my_slot smallint;
BEGIN
  SELECT * INTO before FROM pattern_templates WHERE id = p_pattern_id FOR NO KEY UPDATE;
  DELETE FROM pattern_usage_daily WHERE pattern_id = p_pattern_id;
  INSERT INTO pattern_usage_daily
    (pattern_id, day, usage_count, success_count, execution_time_sum, execution_time_count,
     quality_improvement_sum, quality_improvement_count)
  SELECT pattern_id, (used_at AT TIME ZONE 'UTC')::date, count(*), count(*) FILTER (WHERE success),
         coalesce(sum(execution_time_ms), 0), count(execution_time_ms),
         coalesce(sum(quality_improvement), 0), count(quality_improvement)
    FROM pattern_usage_events WHERE pattern_id = p_pattern_id
   GROUP BY 1, 2;

  UPDATE pattern_templates p SET
    usage_count = s.n,
    success_count = s.ok,
    success_rate = CASE WHEN s.n = 0 THEN NULL ELSE s.ok::numeric / s.n END,
    quality_sample_count = s.qn,
    quality_improvement_sum = s.qsum,
    avg_quality_improvement = CASE WHEN s.qn = 0 THEN NULL ELSE s.qsum / s.qn END,
    execution_sample_count = s.en,
    execution_time_sum = s.esum,
    avg_execution_time_ms = CASE WHEN s.en = 0 THEN NULL ELSE s.esum / s.en END,
    last_used_at = s.last_used
  FROM (
    SELECT count(*) AS n, count(*) FILTER (WHERE success) AS ok,
           count(quality_improvement) AS qn, coalesce(sum(quality_improvement), 0) AS qsum,
           count(execution_time_ms) AS en, coalesce(sum(execution_time_ms), 0) AS esum,
           max(used_at) AS last_used
      FROM pattern_usage_events WHERE pattern_id = p_pattern_id
  ) s
  WHERE p.id = p_pattern_id
  RETURNING p.* INTO updated;

  IF updated.id IS NOT NULL THEN
    my_slot := analytics_slot();
    UPDATE pattern_counters SET
      used_patterns = used_patterns + (updated.usage_count > 0)::int - (before.usage_count > 0)::int,
      success_rate_sum = success_rate_sum
        + CASE WHEN updated.usage_count > 0 THEN updated.success_rate ELSE 0 END
        - CASE WHEN before.usage_count > 0 THEN coalesce(before.success_rate, 0) ELSE 0 END
    WHERE slot = my_slot;
  END IF;
  RETURN updated;
END;
$$;

-- The first whole UTC hour at or after p_start.
CREATE FUNCTION usage_first_full_hour(p_start timestamptz) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN date_trunc('hour', p_start, 'UTC') = p_start THEN p_start
              ELSE date_trunc('hour', p_start, 'UTC') + interval '1 hour' END
$$;

-- Whole UTC hours of [p_start, p_end) from the hourly rollup, the partial hour at either end from raw
-- events (two ranges of the used_at index), summed per UTC day.
CREATE FUNCTION usage_global_by_day(p_start timestamptz, p_end timestamptz)
RETURNS TABLE (day date, usage_count numeric, success_count numeric,
               execution_time_sum numeric, execution_time_count numeric,
               quality_improvement_sum numeric, quality_improvement_count numeric)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT (p.t AT TIME ZONE 'UTC')::date, sum(p.n), sum(p.ok), sum(p.esum), sum(p.en), sum(p.qsum), sum(p.qn)
    FROM (
      SELECT g.hour AS t, g.usage_count AS n, g.success_count AS ok, g.execution_time_sum AS esum,
             g.execution_time_count AS en, g.quality_improvement_sum AS qsum, g.quality_improvement_count AS qn
        FROM usage_global_hourly g
       WHERE g.hour >= usage_first_full_hour(p_start) AND g.hour < date_trunc('hour', p_end, 'UTC')
      UNION ALL
      SELECT e.used_at, 1, e.success::int, coalesce(e.execution_time_ms, 0), (e.execution_time_ms IS NOT NULL)::int,
             coalesce(e.quality_improvement, 0), (e.quality_improvement IS NOT NULL)::int
        FROM pattern_usage_events e
       WHERE e.used_at >= p_start AND e.used_at < least(usage_first_full_hour(p_start), p_end)
      UNION ALL
      SELECT e.used_at, 1, e.success::int, coalesce(e.execution_time_ms, 0), (e.execution_time_ms IS NOT NULL)::int,
             coalesce(e.quality_improvement, 0), (e.quality_improvement IS NOT NULL)::int
        FROM pattern_usage_events e
       WHERE e.used_at >= greatest(date_trunc('hour', p_end, 'UTC'), usage_first_full_hour(p_start))
         AND e.used_at < p_end
    ) p
   GROUP BY 1
  HAVING sum(p.n) <> 0 OR sum(p.en) <> 0 OR sum(p.qn) <> 0
$$;

-- pattern_usage_daily by day and count, busiest first: the per-day candidates of top_used_patterns and the
-- newest-first reads of get_quality_trends. Replaces 003's (day, pattern_id), which it also serves.
CREATE INDEX idx_usage_daily_day_count ON pattern_usage_daily (day DESC, usage_count DESC, pattern_id);
DROP INDEX idx_usage_daily_day;

-- The p_limit patterns used most in [p_start, p_end) (ties by pattern id), exact. Candidates are the k
-- busiest patterns of each UTC day the period touches; a pattern that is no day's candidate was used at
-- most the k-th count of each day, so at most `bound` (their sum) in the period. When the last of the
-- ranked candidates beats the bound the answer is exact; otherwise k grows, and in the end every pattern
-- is counted (p_steps: the values of k tried). Cost: days x k index entries plus the candidates' days, not days x active patterns.
CREATE FUNCTION top_used_patterns(p_start timestamptz, p_end timestamptz, p_limit int,
                                  p_steps int[] DEFAULT ARRAY[25, 250])
RETURNS TABLE (pattern_id uuid, usage_count numeric, success_count numeric)
LANGUAGE plpgsql STABLE SET plan_cache_mode = force_custom_plan AS $$
DECLARE
  k int;
  candidates uuid[];
  bound numeric;
  ranked jsonb;
  ranked_count int;
  last_count numeric;
BEGIN
  FOREACH k IN ARRAY p_steps LOOP
    SELECT array_agg(DISTINCT t.pattern_id), coalesce(sum(t.kth) FILTER (WHERE t.rn = k), 0)
      INTO candidates, bound
      FROM generate_series((p_start AT TIME ZONE 'UTC')::date,
                           ((p_end - interval '1 microsecond') AT TIME ZONE 'UTC')::date,
                           interval '1 day') AS d
      CROSS JOIN LATERAL (
        SELECT u.pattern_id, u.usage_count AS kth, row_number() OVER (ORDER BY u.usage_count DESC) AS rn
          FROM (SELECT x.pattern_id, x.usage_count FROM pattern_usage_daily x
                 WHERE x.day = d::date ORDER BY x.usage_count DESC LIMIT k) u
      ) t;
    IF candidates IS NULL THEN
      RETURN;   -- no usage on any day of the period
    END IF;
    SELECT coalesce(jsonb_agg(jsonb_build_array(u.pattern_id, u.usage_count, u.success_count)
                              ORDER BY u.usage_count DESC, u.pattern_id), '[]')
      INTO ranked
      FROM (SELECT * FROM usage_by_pattern(p_start, p_end) x
             WHERE x.pattern_id = ANY (candidates) AND x.usage_count > 0
             ORDER BY x.usage_count DESC, x.pattern_id LIMIT p_limit) u;
    ranked_count := jsonb_array_length(ranked);
    last_count := (ranked -> -1 ->> 1)::numeric;
    IF bound = 0 OR (ranked_count = p_limit AND last_count > bound) THEN
      RETURN QUERY SELECT (r.e ->> 0)::uuid, (r.e ->> 1)::numeric, (r.e ->> 2)::numeric
        FROM jsonb_array_elements(ranked) WITH ORDINALITY AS r(e, i) ORDER BY r.i;
      RETURN;
    END IF;
  END LOOP;
  RETURN QUERY SELECT u.pattern_id, u.usage_count, u.success_count
    FROM usage_by_pattern(p_start, p_end) u WHERE u.usage_count > 0
   ORDER BY u.usage_count DESC, u.pattern_id LIMIT p_limit;
END;
$$;

-- compute_pattern_analytics_row (015's name for 011's function): global totals and trend from the
-- hourly rollup, top patterns from top_used_patterns. One pattern's analytics are unchanged.
CREATE OR REPLACE FUNCTION compute_pattern_analytics_row(
  p_period_start timestamptz,
  p_period_end timestamptz,
  p_pattern_id uuid DEFAULT NULL,
  p_computed_at timestamptz DEFAULT now()
) RETURNS pattern_analytics
LANGUAGE plpgsql SET plan_cache_mode = force_custom_plan AS $$
DECLARE
  totals record;
  top jsonb := '[]';
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
                 FROM usage_global_by_day(p_period_start, p_period_end) b
                WHERE p_pattern_id IS NULL
               UNION ALL
               SELECT b.day, b.usage_count, b.success_count, b.execution_time_sum, b.execution_time_count,
                      b.quality_improvement_sum, b.quality_improvement_count
                 FROM usage_by_day(p_period_start, p_period_end, p_pattern_id) b
                WHERE p_pattern_id IS NOT NULL) u ON u.day = s.day;

  IF p_pattern_id IS NULL AND totals.n > 0 THEN
    SELECT coalesce(jsonb_agg(jsonb_build_object('pattern_id', t.pattern_id, 'usage_count', t.usage_count,
             'success_count', t.success_count, 'pattern_name', p.pattern_name,
             'success_rate', round(t.success_count / t.usage_count, 6))
             ORDER BY t.usage_count DESC, t.pattern_id), '[]')
      INTO top
      FROM top_used_patterns(p_period_start, p_period_end, 10) t
      JOIN pattern_templates p ON p.id = t.pattern_id;
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

-- The all-time counters, summed over the slots.
CREATE VIEW v_pattern_counters AS
SELECT sum(total_patterns) AS total_patterns, sum(deprecated_patterns) AS deprecated_patterns,
       sum(confidence_sum) AS confidence_sum, sum(confidence_count) AS confidence_count,
       sum(used_patterns) AS used_patterns, sum(success_rate_sum) AS success_rate_sum,
       sum(total_relationships) AS total_relationships
  FROM pattern_counters;

-- Back-fill: what the database holds now, into slot 0.
INSERT INTO usage_global_hourly
  (hour, slot, usage_count, success_count, execution_time_sum, execution_time_count,
   quality_improvement_sum, quality_improvement_count)
SELECT date_trunc('hour', used_at, 'UTC'), 0, count(*), count(*) FILTER (WHERE success),
       coalesce(sum(execution_time_ms), 0), count(execution_time_ms),
       coalesce(sum(quality_improvement), 0), count(quality_improvement)
  FROM pattern_usage_events
 GROUP BY 1;

UPDATE pattern_counters c SET
  total_patterns = p.n, deprecated_patterns = p.dep, confidence_sum = p.csum, confidence_count = p.cn,
  used_patterns = p.used, success_rate_sum = p.rsum,
  total_relationships = (SELECT count(*) FROM pattern_relationships)
FROM (SELECT count(*) AS n, count(*) FILTER (WHERE is_deprecated) AS dep,
             coalesce(sum(confidence_score), 0) AS csum, count(confidence_score) AS cn,
             count(*) FILTER (WHERE usage_count > 0) AS used,
             coalesce(sum(success_rate) FILTER (WHERE usage_count > 0), 0) AS rsum
        FROM pattern_templates) p
WHERE c.slot = 0;
