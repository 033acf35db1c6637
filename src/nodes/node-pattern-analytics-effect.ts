// NodePatternAnalyticsEffect: analytics over a period (default: the 30 days before the message's
// timestamp). Every read goes through the daily rollup (usage_by_day, usage_by_pattern_day), so its cost is
// bounded by days x patterns, not by events.
import type { AnalyticsRequest } from '../contracts/requests.ts';
import type { Pool, PoolClient } from '../db/pool.ts';

type Row = Record<string, unknown>;
import { EffectNode, type Handlers, type NodeOptions } from './effect-node.ts';
import type { EffectScope } from './effect-runner.ts';
import { notFound } from '../contracts/errors.ts';

const DEFAULT_PERIOD_MS = 30 * 24 * 60 * 60 * 1000;

interface Period {
  start: Date;
  end: Date;
}

function periodOf(
  request: { period_start?: string | null; period_end?: string | null },
  eventTime: Date,
): Period {
  const end = request.period_end
    ? new Date(request.period_end)
    : request.period_start
      ? new Date(Date.parse(request.period_start) + DEFAULT_PERIOD_MS)
      : eventTime;
  const start = request.period_start
    ? new Date(request.period_start)
    : new Date(end.getTime() - DEFAULT_PERIOD_MS);
  return { start, end };
}

async function assertPattern(client: PoolClient, patternId: string | null | undefined): Promise<void> {
  if (!patternId) return;
  const { rowCount } = await client.query('SELECT 1 FROM pattern_templates WHERE id = $1', [patternId]);
  if (rowCount === 0) throw notFound(patternId);
}

export class NodePatternAnalyticsEffect extends EffectNode<'pattern.analytics.compute'> {
  constructor(pool: Pool, options: NodeOptions = {}) {
    super('pattern.analytics.compute', pool, options);
  }

  protected readonly handlers: Handlers<'pattern.analytics.compute'> = {
    compute_analytics: async (request, scope) => {
      const { client, eventTime } = scope;
      const { period, patternId } = await scoped(request, scope);
      // A new pattern_analytics row takes its id from the message identity (migration 015's column
      // default reads this transaction-local setting), so a replay stores the same analytics_id; a
      // recomputed period keeps the id it was first stored with.
      await client.query(`SELECT set_config('pattern_worker.analytics_id', $1, true)`, [
        scope.newId('analytics'),
      ]);
      const { rows } = await client.query<Row>(
        `SELECT id AS analytics_id, pattern_id, period_start, period_end, total_usage_count, success_count,
              failure_count, success_rate, average_execution_time_ms, average_quality_improvement, top_patterns,
              trend_direction, trend_strength, computed_at
         FROM compute_pattern_analytics_row($1, $2, $3, $4)`,
        [period.start, period.end, patternId, eventTime],
      );
      return rows[0];
    },
    get_usage_trends: async (request, scope) => {
      const { client } = scope;
      const { period, patternId } = await scoped(request, scope);
      const { rows } = await client.query<Row>(
        `SELECT to_char(date_trunc($4, day), 'YYYY-MM-DD') AS bucket, sum(usage_count) AS usage_count,
              sum(success_count) AS success_count, sum(usage_count) - sum(success_count) AS failure_count,
              round(sum(success_count)::numeric / nullif(sum(usage_count), 0), 6) AS success_rate
         FROM usage_by_day($1, $2, $3)
        GROUP BY 1 ORDER BY 1`,
        [period.start, period.end, patternId, request.aggregate_by],
      );
      return {
        aggregate_by: request.aggregate_by,
        period_start: period.start,
        period_end: period.end,
        buckets: rows,
      };
    },
    get_quality_trends: async (request, scope) => {
      const { client } = scope;
      const { period, patternId } = await scoped(request, scope);
      const { rows } = await client.query<Row>(
        `SELECT to_char(day, 'YYYY-MM-DD') AS day, sum(usage_count) AS usage_count,
              round(sum(quality_improvement_sum) / nullif(sum(quality_improvement_count), 0), 6)
                AS average_quality_improvement,
              sum(quality_improvement_count) AS quality_samples
         FROM usage_by_day($1, $2, $3)
        GROUP BY day ORDER BY day`,
        [period.start, period.end, patternId],
      );
      return { period_start: period.start, period_end: period.end, days: rows };
    },
    get_effectiveness: async (request, scope) => {
      const { client } = scope;
      const { period, patternId } = await scoped(request, scope);
      // Effectiveness: success rate scaled by the average quality improvement (1 + improvement), so a
      // pattern that always succeeds and improves quality by 0.2 scores 1.2.
      const { rows } = await client.query<Row>(
        `SELECT u.pattern_id, p.pattern_name, u.n AS usage_count, u.ok AS success_count,
              round(u.ok::numeric / u.n, 6) AS success_rate,
              round(u.qsum / nullif(u.qn, 0), 6) AS average_quality_improvement,
              round((u.ok::numeric / u.n) * (1 + coalesce(u.qsum / nullif(u.qn, 0), 0)), 6) AS effectiveness_score
         FROM (SELECT pattern_id, sum(usage_count) AS n, sum(success_count) AS ok,
                      sum(quality_improvement_sum) AS qsum, sum(quality_improvement_count) AS qn
                 FROM usage_by_pattern_day($1, $2, $3) GROUP BY pattern_id) u
         JOIN pattern_templates p ON p.id = u.pattern_id
        ORDER BY effectiveness_score DESC, u.n DESC, u.pattern_id
        LIMIT $4`,
        [period.start, period.end, patternId, request.limit],
      );
      return { period_start: period.start, period_end: period.end, patterns: rows };
    },
    get_global_stats: async (request, scope) => {
      const { client } = scope;
      const { period } = await scoped(request, scope);
      const { rows } = await client.query<Row>(
        `SELECT (SELECT count(*) FROM pattern_templates) AS total_patterns,
              (SELECT count(*) FROM pattern_templates WHERE is_deprecated) AS deprecated_patterns,
              (SELECT count(*) FROM pattern_relationships) AS total_relationships,
              coalesce(sum(u.usage_count), 0) AS usage_count,
              coalesce(sum(u.success_count), 0) AS success_count,
              round(sum(u.success_count)::numeric / nullif(sum(u.usage_count), 0), 6) AS success_rate,
              round(sum(u.quality_improvement_sum) / nullif(sum(u.quality_improvement_count), 0), 6)
                AS average_quality_improvement,
              round(sum(u.execution_time_sum) / nullif(sum(u.execution_time_count), 0), 3)
                AS average_execution_time_ms,
              count(DISTINCT u.pattern_id) AS active_patterns
         FROM usage_by_pattern_day($1, $2, NULL) u`,
        [period.start, period.end],
      );
      return { period_start: period.start, period_end: period.end, ...rows[0] };
    },
  };
}

/** Every analytics operation's period, and its pattern (which must exist) when it names one. */
async function scoped(
  request: AnalyticsRequest,
  scope: EffectScope,
): Promise<{ period: Period; patternId: string | null }> {
  const period = periodOf(request, scope.eventTime);
  const patternId = 'pattern_id' in request ? (request.pattern_id ?? null) : null;
  await assertPattern(scope.client, patternId);
  return { period, patternId };
}
