-- top_used_patterns probed the busiest patterns of every UTC day the period touches, used or not: a
-- period of 0001-01-01 to 9999-12-31 was 3.65 million index probes per pass, 21 s of one core for one
-- global compute_analytics, which then timed out on every attempt and held the analytics lane. A day
-- without a pattern_usage_daily row has no candidates, so the probes now run over the days from the
-- period's first day with usage to its last (two index reads find them). The same candidates, bound and
-- results as 017's.
CREATE OR REPLACE FUNCTION top_used_patterns(p_start timestamptz, p_end timestamptz, p_limit int,
                                             p_steps int[] DEFAULT ARRAY[25, 250])
RETURNS TABLE (pattern_id uuid, usage_count numeric, success_count numeric)
LANGUAGE plpgsql STABLE SET plan_cache_mode = force_custom_plan AS $$
DECLARE
  k int;
  first_day date := (p_start AT TIME ZONE 'UTC')::date;
  last_day date := ((p_end - interval '1 microsecond') AT TIME ZONE 'UTC')::date;
  candidates uuid[];
  bound numeric;
  ranked jsonb;
  ranked_count int;
  last_count numeric;
BEGIN
  SELECT min(x.day) INTO first_day FROM pattern_usage_daily x WHERE x.day BETWEEN first_day AND last_day;
  IF first_day IS NULL THEN
    RETURN;   -- no usage on any day of the period
  END IF;
  SELECT max(x.day) INTO last_day FROM pattern_usage_daily x WHERE x.day BETWEEN first_day AND last_day;
  FOREACH k IN ARRAY p_steps LOOP
    SELECT array_agg(DISTINCT t.pattern_id), coalesce(sum(t.kth) FILTER (WHERE t.rn = k), 0)
      INTO candidates, bound
      FROM generate_series(first_day, last_day, interval '1 day') AS d
      CROSS JOIN LATERAL (
        SELECT u.pattern_id, u.usage_count AS kth, row_number() OVER (ORDER BY u.usage_count DESC) AS rn
          FROM (SELECT x.pattern_id, x.usage_count FROM pattern_usage_daily x
                 WHERE x.day = d::date ORDER BY x.usage_count DESC LIMIT k) u
      ) t;
    IF candidates IS NULL THEN
      RETURN;
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
