-- Most successful patterns. Ranked by the lower bound of the 95% Wilson interval of the success rate,
-- so one success out of one does not outrank 990 out of 1000. Deprecated patterns stay in; callers filter.
CREATE VIEW v_top_patterns AS
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

-- Quality per pattern per UTC day, from the raw events.
CREATE VIEW v_pattern_quality_trends AS
SELECT e.pattern_id, p.pattern_name, (e.used_at AT TIME ZONE 'UTC')::date AS day,
       count(*) AS usage_count,
       count(*) FILTER (WHERE e.success) AS success_count,
       count(*) FILTER (WHERE e.success)::numeric / count(*) AS success_rate,
       avg(e.quality_before) AS avg_quality_before,
       avg(e.quality_after) AS avg_quality_after,
       avg(e.quality_improvement) AS avg_quality_improvement,
       avg(e.execution_time_ms) AS avg_execution_time_ms
  FROM pattern_usage_events e
  JOIN pattern_templates p ON p.id = e.pattern_id
 GROUP BY e.pattern_id, p.pattern_name, (e.used_at AT TIME ZONE 'UTC')::date;
