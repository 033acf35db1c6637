-- Partial days at the cost of their smaller side (issue 23). A period rarely starts or ends at midnight UTC,
-- and until now its partial first and last days were read as raw events: for the default period (the 30 days
-- before now) that is every event of today so far plus the tail of the day 30 days ago, for the top
-- patterns' candidates (8,238 events on the benchmark's data) and for one pattern's trend (the hot
-- pattern's day). Now each partial day is read from whichever side holds fewer events: the events inside the
-- period, or the day's rollup row minus the events outside it. For a period ending now, the outside of its
-- last day is the rest of today, which holds no events yet. Which side is smaller is estimated from
-- usage_global_hourly (the hours of each side, a sum of at most 24 x 64 rows); both sides give the same
-- exact answer, the estimate only picks the cheaper one.
--
-- usage_period_plan says how [p_start, p_end) is read: rollup days [day_from, day_to), raw events added
-- from [add1_from, add1_to) and [add2_from, add2_to), raw events subtracted (their day's rollup row is
-- counted) from [sub1_from, sub1_to) and [sub2_from, sub2_to). An unused range is empty (from = to).

-- Events in [p_from, p_to) by the hourly rollup, counting the hour p_from falls in whole: an estimate.
CREATE FUNCTION usage_events_estimate(p_from timestamptz, p_to timestamptz) RETURNS numeric
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT coalesce(sum(g.usage_count), 0)
    FROM usage_global_hourly g
   WHERE p_to > p_from AND g.hour >= date_trunc('hour', p_from, 'UTC') AND g.hour < p_to
$$;

CREATE FUNCTION usage_period_plan(p_start timestamptz, p_end timestamptz)
RETURNS TABLE (day_from date, day_to date,
               add1_from timestamptz, add1_to timestamptz, add2_from timestamptz, add2_to timestamptz,
               sub1_from timestamptz, sub1_to timestamptz, sub2_from timestamptz, sub2_to timestamptz)
LANGUAGE plpgsql STABLE ROWS 1 AS $$
DECLARE
  d_first date := (p_start AT TIME ZONE 'UTC')::date;
  d_last date := ((p_end - interval '1 microsecond') AT TIME ZONE 'UTC')::date;
  m_first timestamptz := (p_start AT TIME ZONE 'UTC')::date::timestamp AT TIME ZONE 'UTC';
  m_second timestamptz := ((p_start AT TIME ZONE 'UTC')::date + 1)::timestamp AT TIME ZONE 'UTC';
  m_last timestamptz := ((p_end - interval '1 microsecond') AT TIME ZONE 'UTC')::date::timestamp AT TIME ZONE 'UTC';
  m_after timestamptz := (((p_end - interval '1 microsecond') AT TIME ZONE 'UTC')::date + 1)::timestamp
                         AT TIME ZONE 'UTC';
BEGIN
  day_from := d_first;
  day_to := d_last + 1;
  add1_from := p_start; add1_to := p_start; add2_from := p_start; add2_to := p_start;
  sub1_from := p_start; sub1_to := p_start; sub2_from := p_start; sub2_to := p_start;
  IF p_end <= p_start THEN
    day_to := day_from;
  ELSIF d_first = d_last THEN
    -- One day, partial at one end or both: its inside, or its row minus both outsides.
    IF p_start > m_first OR p_end < m_after THEN
      IF usage_events_estimate(p_start, p_end)
         <= usage_events_estimate(m_first, p_start) + usage_events_estimate(p_end, m_after) THEN
        day_to := day_from;
        add1_from := p_start; add1_to := p_end;
      ELSE
        sub1_from := m_first; sub1_to := p_start;
        sub2_from := p_end; sub2_to := m_after;
      END IF;
    END IF;
  ELSE
    IF p_start > m_first THEN
      IF usage_events_estimate(p_start, m_second) <= usage_events_estimate(m_first, p_start) THEN
        day_from := d_first + 1;
        add1_from := p_start; add1_to := m_second;
      ELSE
        sub1_from := m_first; sub1_to := p_start;
      END IF;
    END IF;
    IF p_end < m_after THEN
      IF usage_events_estimate(m_last, p_end) <= usage_events_estimate(p_end, m_after) THEN
        day_to := d_last;
        add2_from := m_last; add2_to := p_end;
      ELSE
        sub2_from := p_end; sub2_to := m_after;
      END IF;
    END IF;
  END IF;
  RETURN NEXT;
END;
$$;

-- Usage of some patterns over [p_start, p_end), exact: their rollup rows of the plan's days (primary key
-- ranges) and their raw events of the plan's ranges ((pattern_id, used_at) ranges), with signs.
CREATE FUNCTION usage_of_patterns(p_start timestamptz, p_end timestamptz, p_patterns uuid[])
RETURNS TABLE (pattern_id uuid, usage_count numeric, success_count numeric)
LANGUAGE plpgsql STABLE SET plan_cache_mode = force_custom_plan AS $$
DECLARE
  x record;
BEGIN
  SELECT * INTO x FROM usage_period_plan(p_start, p_end);
  RETURN QUERY
  SELECT u.pattern_id, sum(u.n), sum(u.ok)
    FROM (SELECT d.pattern_id, d.usage_count AS n, d.success_count AS ok
            FROM pattern_usage_daily d
           WHERE d.pattern_id = ANY (p_patterns) AND d.day >= x.day_from AND d.day < x.day_to
          UNION ALL
          SELECT e.pattern_id, s.sign, s.sign * e.success::int
            FROM (VALUES (1, x.add1_from, x.add1_to), (1, x.add2_from, x.add2_to),
                         (-1, x.sub1_from, x.sub1_to), (-1, x.sub2_from, x.sub2_to)) AS s (sign, t0, t1)
            JOIN pattern_usage_events e
              ON e.pattern_id = ANY (p_patterns) AND e.used_at >= s.t0 AND e.used_at < s.t1
           WHERE s.t1 > s.t0) u
   GROUP BY u.pattern_id;
END;
$$;

-- 011's usage_by_day, read by the same plan: per UTC day of [p_start, p_end), one pattern or all.
CREATE OR REPLACE FUNCTION usage_by_day(p_start timestamptz, p_end timestamptz, p_pattern_id uuid)
RETURNS TABLE (day date, usage_count numeric, success_count numeric,
               execution_time_sum numeric, execution_time_count numeric,
               quality_improvement_sum numeric, quality_improvement_count numeric)
LANGUAGE plpgsql STABLE SET plan_cache_mode = force_custom_plan AS $$
DECLARE
  x record;
BEGIN
  SELECT * INTO x FROM usage_period_plan(p_start, p_end);
  RETURN QUERY SELECT u.day, sum(u.n), sum(u.ok), sum(u.esum), sum(u.en), sum(u.qsum), sum(u.qn)
    FROM (SELECT d.day, sum(d.usage_count) AS n, sum(d.success_count) AS ok,
                 sum(d.execution_time_sum) AS esum, sum(d.execution_time_count) AS en,
                 sum(d.quality_improvement_sum) AS qsum, sum(d.quality_improvement_count) AS qn
            FROM pattern_usage_daily d
           WHERE d.day >= x.day_from AND d.day < x.day_to
             AND (p_pattern_id IS NULL OR d.pattern_id = p_pattern_id)
           GROUP BY d.day
          UNION ALL
          SELECT (e.used_at AT TIME ZONE 'UTC')::date, sum(s.sign), sum(s.sign * e.success::int),
                 coalesce(sum(s.sign * e.execution_time_ms), 0),
                 sum(s.sign * (e.execution_time_ms IS NOT NULL)::int),
                 coalesce(sum(s.sign * e.quality_improvement), 0),
                 sum(s.sign * (e.quality_improvement IS NOT NULL)::int)
            FROM (VALUES (1, x.add1_from, x.add1_to), (1, x.add2_from, x.add2_to),
                         (-1, x.sub1_from, x.sub1_to), (-1, x.sub2_from, x.sub2_to)) AS s (sign, t0, t1)
            JOIN pattern_usage_events e
              ON (p_pattern_id IS NULL OR e.pattern_id = p_pattern_id) AND e.used_at >= s.t0 AND e.used_at < s.t1
           WHERE s.t1 > s.t0
           GROUP BY 1) u
   GROUP BY u.day
  HAVING sum(u.n) <> 0;
END;
$$;

-- 016's top_used_patterns, its candidates counted by usage_of_patterns instead of every pattern's partial
-- days. Same signature and results.
CREATE OR REPLACE FUNCTION top_used_patterns(p_start timestamptz, p_end timestamptz, p_limit int,
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
      FROM (SELECT * FROM usage_of_patterns(p_start, p_end, candidates) x
             WHERE x.usage_count > 0
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

-- The global rollups of 016 (usage_global_hourly, pattern_counters) rebuilt from the rows they count, into
-- slot 0: after a load that bypassed the triggers (a bulk load with trg_usage_events_stats disabled, a
-- restore of some tables). Writers of the counted tables wait while it runs.
CREATE FUNCTION rebuild_analytics_rollups() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  LOCK TABLE pattern_templates, pattern_usage_events, pattern_relationships IN SHARE MODE;
  LOCK TABLE usage_global_hourly, pattern_counters IN EXCLUSIVE MODE;
  DELETE FROM usage_global_hourly;
  INSERT INTO usage_global_hourly
    (hour, slot, usage_count, success_count, execution_time_sum, execution_time_count,
     quality_improvement_sum, quality_improvement_count)
  SELECT date_trunc('hour', used_at, 'UTC'), 0, count(*), count(*) FILTER (WHERE success),
         coalesce(sum(execution_time_ms), 0), count(execution_time_ms),
         coalesce(sum(quality_improvement), 0), count(quality_improvement)
    FROM pattern_usage_events
   GROUP BY 1;
  UPDATE pattern_counters c SET
    total_patterns = CASE WHEN c.slot = 0 THEN p.n ELSE 0 END,
    deprecated_patterns = CASE WHEN c.slot = 0 THEN p.dep ELSE 0 END,
    confidence_sum = CASE WHEN c.slot = 0 THEN p.csum ELSE 0 END,
    confidence_count = CASE WHEN c.slot = 0 THEN p.cn ELSE 0 END,
    used_patterns = CASE WHEN c.slot = 0 THEN p.used ELSE 0 END,
    success_rate_sum = CASE WHEN c.slot = 0 THEN p.rsum ELSE 0 END,
    total_relationships = CASE WHEN c.slot = 0 THEN p.rels ELSE 0 END
  FROM (SELECT count(*) AS n, count(*) FILTER (WHERE is_deprecated) AS dep,
               coalesce(sum(confidence_score), 0) AS csum, count(confidence_score) AS cn,
               count(*) FILTER (WHERE usage_count > 0) AS used,
               coalesce(sum(success_rate) FILTER (WHERE usage_count > 0), 0) AS rsum,
               (SELECT count(*) FROM pattern_relationships) AS rels
          FROM pattern_templates) p;
END;
$$;
