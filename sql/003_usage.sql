-- Usage events, a per-day rollup, and the set-based statistics trigger.

CREATE TABLE pattern_usage_events (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  -- Usage history belongs to its pattern: deleting the pattern deletes it.
  pattern_id uuid NOT NULL REFERENCES pattern_templates (id) ON DELETE CASCADE,
  correlation_id text,
  file_path text,
  project_id text,
  success boolean NOT NULL,
  execution_time_ms numeric CHECK (execution_time_ms >= 0),
  error_message text,
  quality_before numeric CHECK (quality_before BETWEEN 0 AND 1),
  quality_after numeric CHECK (quality_after BETWEEN 0 AND 1),
  -- numeric, so 0.88 - 0.65 is exactly 0.23 and 0.5 - 0.5 is 0, not NULL.
  quality_improvement numeric GENERATED ALWAYS AS (quality_after - quality_before) STORED,
  tags text[] NOT NULL DEFAULT '{}',
  context jsonb NOT NULL DEFAULT '{}',
  used_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX idx_usage_events_pattern_used_at ON pattern_usage_events (pattern_id, used_at);
CREATE INDEX idx_usage_events_used_at ON pattern_usage_events (used_at);
CREATE INDEX idx_usage_events_tags ON pattern_usage_events USING gin (tags);

-- One row per pattern per UTC day: analytics read whole days from here, so their cost grows with
-- days x active patterns, not with the number of events.
CREATE TABLE pattern_usage_daily (
  pattern_id uuid NOT NULL REFERENCES pattern_templates (id) ON DELETE CASCADE,
  day date NOT NULL,
  usage_count bigint NOT NULL,
  success_count bigint NOT NULL,
  execution_time_sum numeric NOT NULL,
  execution_time_count bigint NOT NULL,
  quality_improvement_sum numeric NOT NULL,
  quality_improvement_count bigint NOT NULL,
  PRIMARY KEY (pattern_id, day)
);
CREATE INDEX idx_usage_daily_day ON pattern_usage_daily (day, pattern_id);

-- Statement-level: a 1,000-row insert costs one UPDATE per affected pattern, not 1,000.
CREATE FUNCTION update_pattern_stats() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  -- Lock the affected patterns in id order, so concurrent batches over the same patterns never deadlock.
  PERFORM 1 FROM pattern_templates
    WHERE id IN (SELECT DISTINCT pattern_id FROM new_events)
    ORDER BY id FOR UPDATE;

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
  )
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
  WHERE p.id = b.pattern_id;

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
  RETURN NULL;
END;
$$;

CREATE TRIGGER trg_usage_events_stats
  AFTER INSERT ON pattern_usage_events
  REFERENCING NEW TABLE AS new_events
  FOR EACH STATEMENT EXECUTE FUNCTION update_pattern_stats();

-- Repair: recomputes one pattern's statistics and daily rollup from its events.
CREATE FUNCTION recompute_pattern_stats(p_pattern_id uuid) RETURNS pattern_templates
LANGUAGE plpgsql AS $$
DECLARE
  updated pattern_templates;
BEGIN
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
  RETURN updated;
END;
$$;
