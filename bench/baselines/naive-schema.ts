// The naive baseline's schema change: the set-based statement trigger replaced by a per-row trigger,
// as a first implementation usually writes it (one UPDATE and one rollup upsert per event).
import type { Pool } from '../../src/db/pool.ts';

export async function installRowTrigger(pool: Pool): Promise<void> {
  await pool.query(`
    DROP TRIGGER trg_usage_events_stats ON pattern_usage_events;
    CREATE FUNCTION naive_update_pattern_stats() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      UPDATE pattern_templates p SET
        usage_count = p.usage_count + 1,
        success_count = p.success_count + CASE WHEN NEW.success THEN 1 ELSE 0 END,
        success_rate = (p.success_count + CASE WHEN NEW.success THEN 1 ELSE 0 END)::numeric / (p.usage_count + 1),
        quality_sample_count = p.quality_sample_count + CASE WHEN NEW.quality_improvement IS NULL THEN 0 ELSE 1 END,
        quality_improvement_sum = p.quality_improvement_sum + coalesce(NEW.quality_improvement, 0),
        avg_quality_improvement = CASE
          WHEN p.quality_sample_count + CASE WHEN NEW.quality_improvement IS NULL THEN 0 ELSE 1 END = 0 THEN NULL
          ELSE (p.quality_improvement_sum + coalesce(NEW.quality_improvement, 0))
               / (p.quality_sample_count + CASE WHEN NEW.quality_improvement IS NULL THEN 0 ELSE 1 END) END,
        execution_sample_count = p.execution_sample_count + CASE WHEN NEW.execution_time_ms IS NULL THEN 0 ELSE 1 END,
        execution_time_sum = p.execution_time_sum + coalesce(NEW.execution_time_ms, 0),
        avg_execution_time_ms = CASE
          WHEN p.execution_sample_count + CASE WHEN NEW.execution_time_ms IS NULL THEN 0 ELSE 1 END = 0 THEN NULL
          ELSE (p.execution_time_sum + coalesce(NEW.execution_time_ms, 0))
               / (p.execution_sample_count + CASE WHEN NEW.execution_time_ms IS NULL THEN 0 ELSE 1 END) END,
        last_used_at = GREATEST(p.last_used_at, NEW.used_at)
      WHERE p.id = NEW.pattern_id;
      INSERT INTO pattern_usage_daily AS d VALUES (
        NEW.pattern_id, (NEW.used_at AT TIME ZONE 'UTC')::date, 1, CASE WHEN NEW.success THEN 1 ELSE 0 END,
        coalesce(NEW.execution_time_ms, 0), CASE WHEN NEW.execution_time_ms IS NULL THEN 0 ELSE 1 END,
        coalesce(NEW.quality_improvement, 0), CASE WHEN NEW.quality_improvement IS NULL THEN 0 ELSE 1 END)
      ON CONFLICT (pattern_id, day) DO UPDATE SET
        usage_count = d.usage_count + 1,
        success_count = d.success_count + EXCLUDED.success_count,
        execution_time_sum = d.execution_time_sum + EXCLUDED.execution_time_sum,
        execution_time_count = d.execution_time_count + EXCLUDED.execution_time_count,
        quality_improvement_sum = d.quality_improvement_sum + EXCLUDED.quality_improvement_sum,
        quality_improvement_count = d.quality_improvement_count + EXCLUDED.quality_improvement_count;
      RETURN NULL;
    END;
    $$;
    CREATE TRIGGER naive_usage_events_stats AFTER INSERT ON pattern_usage_events
      FOR EACH ROW EXECUTE FUNCTION naive_update_pattern_stats();`);
}
