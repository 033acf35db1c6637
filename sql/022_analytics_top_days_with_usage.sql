-- top_used_patterns probed the busiest patterns of every UTC day the period touches, used or not: a
-- period of 0001-01-01 to 9999-12-31 was 3.65 million index probes per pass, 21 s of one core for one
-- global compute_analytics, which then timed out on every attempt and held the analytics lane. A day
-- without a pattern_usage_daily row holds no event, so the period is first narrowed to the days from its
-- first day with usage to its last (two index reads find them) and 017's function runs on that: the same
-- events, candidates and results, over the days that have any.
ALTER FUNCTION top_used_patterns(timestamptz, timestamptz, int, int[]) RENAME TO top_used_patterns_of_days;

CREATE FUNCTION top_used_patterns(p_start timestamptz, p_end timestamptz, p_limit int,
                                  p_steps int[] DEFAULT ARRAY[25, 250])
RETURNS TABLE (pattern_id uuid, usage_count numeric, success_count numeric)
LANGUAGE sql STABLE AS $$
  SELECT t.*
    FROM (SELECT min(x.day) AS first_day, max(x.day) AS last_day
            FROM pattern_usage_daily x
           WHERE x.day BETWEEN (p_start AT TIME ZONE 'UTC')::date
                           AND ((p_end - interval '1 microsecond') AT TIME ZONE 'UTC')::date) used
    CROSS JOIN LATERAL top_used_patterns_of_days(
      greatest(p_start, used.first_day::timestamp AT TIME ZONE 'UTC'),
      least(p_end, (used.last_day + 1)::timestamp AT TIME ZONE 'UTC'),
      p_limit, p_steps) t
   WHERE used.first_day IS NOT NULL
$$;
