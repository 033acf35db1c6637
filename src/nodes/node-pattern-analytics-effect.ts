// NodePatternAnalyticsEffect: the seed's analytics reads (node_pattern_analytics_effect.py), with its keys,
// shapes and defaults, and ours beside them (README "Analytics"). Global figures come from the rollups of
// migration 016 (hourly usage and all-time counters, both split into slots and summed here), so a global
// read costs O(hours in the period), not O(events) or O(patterns x days). One pattern's figures come from
// its daily rollup and its statistics row.
//
// Identical global reads (no pattern_id) within `resultMaxAgeMs` of a computation are answered from it:
// the first computes (the others asking meanwhile wait for it), the rest get its data with
// `metadata.as_of`, the time it was read, and `metadata.cached: true`. Once an answer is past half that
// age, the next is computed ahead in the background (one at a time) while it keeps serving. Refresh-ahead:
// a key read within the last `refreshAheadMs` is recomputed at half the age of each answer whether or not
// a read comes then, so a dashboard polling at any interval (up to `refreshAheadMs`) finds a fresh answer
// and never waits for a computation after its first read; a key not read for that long is no longer
// refreshed (its last answer expires). A read that finds its answer expired while a computation of it
// runs waits for that one (single flight). Every analytics read states `metadata.as_of`.
import { performance } from 'node:perf_hooks';
import type { QueryResultRow } from 'pg';
import { validateRequest } from '../contracts/decode.ts';
import { isWriteOperation } from '../contracts/operations.ts';
import type { AnalyticsRequest } from '../contracts/requests.ts';
import { buildResult, type ModelResult } from '../contracts/results.ts';
import type { Pool } from '../db/pool.ts';
import { notFound } from '../contracts/errors.ts';
import { checkDeadline } from './read-deadline.ts';
import { EffectNode, type ExecuteContext, type Handlers, type NodeOptions } from './effect-node.ts';
import type { EffectScope } from './effect-runner.ts';

type Row = Record<string, unknown>;
const DAY_MS = 24 * 60 * 60 * 1000;

export interface AnalyticsNodeOptions extends NodeOptions {
  /**
   * get_global_stats' top_patterns (the seed's v_top_patterns, ranked over every pattern: about 0.7 s on
   * 100,000 patterns) are reused for this long, and refreshed in the background after; the result's
   * `metadata.as_of` is never later than their read. 0: read on every request.
   */
  topPatternsMaxAgeMs?: number;
  /**
   * Identical global reads within this many ms of a computation are answered from it, and recomputed
   * ahead once half of it has passed (ANALYTICS_RESULT_MAX_AGE_MS); a request's `max_age_ms` only lowers
   * it. 0 (the default here): never.
   */
  resultMaxAgeMs?: number;
  /** Distinct global reads kept (the oldest computed is dropped first). */
  resultCacheEntries?: number;
  /**
   * Refresh-ahead (ANALYTICS_REFRESH_AHEAD_MS): a global read asked within this many ms is recomputed in
   * the background at half `resultMaxAgeMs` after each computation, whether or not a read comes then,
   * one background computation at a time on this node's pool; a read not asked for this long is no
   * longer refreshed. 0 (the default here): refreshed only when a read finds its answer past half age.
   */
  refreshAheadMs?: number;
  /** The share of time background refreshes may keep the database busy (default REFRESH_DUTY, a quarter;
   * 1: no pause between them). */
  refreshDuty?: number;
}

/** A handler's data whose figures were partly read before the request (reused top patterns) carry when. */
const READ_BEFORE = Symbol('read before');
type DatedData = { [READ_BEFORE]?: Date };

interface Answer {
  data: unknown;
  /** Stated as metadata.as_of: when its oldest figure was read. */
  asOf: Date;
  /** When its computation started: its age for the freshness bound. */
  computedAt: Date;
}

interface CacheEntry {
  /** The latest answer computed. */
  answer?: Answer | undefined;
  /** A computation in flight; undefined when it failed (nothing to reuse). */
  computing?: Promise<Answer | undefined> | undefined;
  /** The latest read of the key (a background refresh computes it again), and when it came. */
  lastRead?: { request: AnalyticsRequest; context: ExecuteContext; at: number } | undefined;
  /** The refresh-ahead timer, due at half the age of the latest answer. */
  timer?: NodeJS.Timeout | undefined;
  /** Waiting for the one background refresh at a time. */
  queued?: boolean;
  /** When its latest computation started (successful or not): the next background one is half the bound later. */
  startedAt?: number;
}

/** The cache key of a global read: its operation and every field that shapes the answer. */
function cacheKeyOf(request: AnalyticsRequest): string | undefined {
  if ('pattern_id' in request && request.pattern_id) return undefined;
  const fields = Object.entries(request)
    .filter(([k, v]) => k !== 'correlation_id' && k !== 'max_age_ms' && v !== undefined && v !== null)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return JSON.stringify(fields);
}

/**
 * The share of time background refreshes may keep the database busy: after a refresh that took d ms, the
 * next starts no sooner than d x (1 / share - 1) ms later. Any producer chooses the keys refreshed (a
 * period is part of the key), so without it 32 reads of long periods kept one database process busy for
 * as long as refresh-ahead lasted (68.9 s of statements in 65 s); with it, at most a quarter of one.
 */
const REFRESH_DUTY = 0.25;

const TOP_PATTERNS_SQL = `SELECT pattern_name, usage_count, success_rate, confidence_score, id AS pattern_id, wilson_score
  FROM v_top_patterns LIMIT 10`;

interface TopPatterns {
  rows: Row[];
  asOf: Date;
}

interface Period {
  start: Date;
  end: Date;
}

/** A period from the request, `defaultDays` long and ending at the message's time when left out. */
function periodOf(
  request: { period_start?: string | null; period_end?: string | null },
  eventTime: Date,
  defaultDays: number,
): Period {
  const length = defaultDays * DAY_MS;
  const end = request.period_end
    ? new Date(request.period_end)
    : request.period_start
      ? new Date(Date.parse(request.period_start) + length)
      : eventTime;
  const start = request.period_start ? new Date(request.period_start) : new Date(end.getTime() - length);
  return { start, end };
}

function patternOf(request: AnalyticsRequest): string | null {
  return 'pattern_id' in request ? (request.pattern_id ?? null) : null;
}

const ratio = (sum: unknown, count: unknown): number | null =>
  Number(count) > 0 ? Number(sum) / Number(count) : null;

export class NodePatternAnalyticsEffect extends EffectNode<'pattern.analytics.compute'> {
  readonly #topMaxAgeMs: number;
  #top: TopPatterns | undefined;
  #refreshing: Promise<void> | undefined;
  readonly #resultMaxAgeMs: number;
  readonly #cacheEntries: number;
  readonly #cache = new Map<string, CacheEntry>();
  readonly #refreshAheadMs: number;
  /** The one background refresh of a cached read at a time (so at most one beside the lane's units). */
  #refreshingRead: Promise<void> | undefined;
  /** Keys due for a background refresh, in the order they fell due. */
  readonly #refreshQueue: string[] = [];
  /** No background refresh starts before this (epoch ms): the duty's pause after the last one. */
  #refreshRestAt = 0;
  #refreshRestTimer: NodeJS.Timeout | undefined;
  readonly #refreshDuty: number;
  #stopped = false;

  constructor(pool: Pool, options: AnalyticsNodeOptions = {}) {
    super('pattern.analytics.compute', pool, options);
    this.#topMaxAgeMs = options.topPatternsMaxAgeMs ?? 0;
    this.#resultMaxAgeMs = options.resultMaxAgeMs ?? 0;
    this.#cacheEntries = Math.max(1, options.resultCacheEntries ?? 32);
    this.#refreshDuty = Math.min(1, Math.max(0.01, options.refreshDuty ?? REFRESH_DUTY));
    this.#refreshAheadMs = this.#resultMaxAgeMs > 0 ? Math.max(0, options.refreshAheadMs ?? 0) : 0;
  }

  /** Stops refreshing ahead (before the pool ends): no timer left, no background refresh started. */
  stopRefreshing(): void {
    this.#stopped = true;
    for (const entry of this.#cache.values()) {
      clearTimeout(entry.timer);
      entry.timer = undefined;
      entry.queued = false;
    }
    this.#refreshQueue.length = 0;
    clearTimeout(this.#refreshRestTimer);
    this.#refreshRestTimer = undefined;
  }

  /** Writes as every node; reads with `metadata.as_of`, global ones from the cache when fresh enough. */
  override async executeEffect(
    contract: AnalyticsRequest,
    context: ExecuteContext = {},
  ): Promise<ModelResult> {
    const startedAt = performance.now();
    let request = contract;
    if (!context.validated) {
      const checked = validateRequest(this.topic, contract);
      if (!checked.ok) return super.executeEffect(contract, context);
      request = checked.request;
      context = { ...context, validated: true };
    }
    if (isWriteOperation(request.operation)) return super.executeEffect(request, context);
    const maxAge = Math.min(
      this.#resultMaxAgeMs,
      ('max_age_ms' in request ? request.max_age_ms : undefined) ?? Infinity,
    );
    const key = maxAge > 0 ? cacheKeyOf(request) : undefined;
    if (key === undefined) return (await this.#read(request, context)).result;

    const entry = this.#entry(key);
    entry.lastRead = { request, context: { ...context, deadline: undefined }, at: Date.now() };
    const fresh = (a: Answer | undefined): a is Answer =>
      a !== undefined && Date.now() - a.computedAt.getTime() < maxAge;
    if (fresh(entry.answer)) {
      // Past half its age, the next answer is computed ahead, in the background, while this one serves;
      // before that, refresh-ahead sets the time it will be (for a key that was no longer refreshed).
      this.#scheduleRefresh(key, entry);
      return this.#cached(request, context, entry.answer, startedAt);
    }
    // Single flight: an answer being computed (by a reader or in the background) is waited for.
    if (entry.computing) {
      const joined = await entry.computing;
      if (fresh(joined)) return this.#cached(request, context, joined, startedAt);
    }
    return this.#compute(key, entry, request, context);
  }

  /** The cache entry of a key, the key moved to the newest place; the oldest keys beyond the bound go. */
  #entry(key: string): CacheEntry {
    const entry = this.#cache.get(key) ?? {};
    this.#cache.delete(key);
    this.#cache.set(key, entry);
    while (this.#cache.size > this.#cacheEntries) {
      const oldest = this.#cache.keys().next().value as string;
      clearTimeout(this.#cache.get(oldest)?.timer);
      this.#cache.delete(oldest);
    }
    return entry;
  }

  /** Whether a key was read recently enough to be refreshed ahead of its reads. */
  #hot(entry: CacheEntry): boolean {
    return (
      this.#refreshAheadMs > 0 &&
      entry.lastRead !== undefined &&
      Date.now() - entry.lastRead.at <= this.#refreshAheadMs
    );
  }

  /**
   * Queues a key's background refresh once its answer is past half the bound, or (refresh-ahead, a key
   * read within refreshAheadMs) sets a timer for then. Nothing while the key is being computed, queued or
   * timed (its computation's end schedules the next), so there is one refresh per key at a time and the
   * next one starts at least half the bound after the previous one started.
   */
  #scheduleRefresh(key: string, entry: CacheEntry): void {
    if (this.#stopped || !entry.answer || entry.computing || entry.queued || entry.timer) return;
    const last = Math.max(entry.answer.computedAt.getTime(), entry.startedAt ?? 0);
    const dueIn = last + this.#resultMaxAgeMs / 2 - Date.now();
    if (dueIn <= 0) {
      entry.queued = true;
      this.#refreshQueue.push(key);
      this.#nextRefresh();
    } else if (this.#hot(entry)) {
      entry.timer = setTimeout(() => {
        entry.timer = undefined;
        // A key dropped from the cache, or not read for refreshAheadMs, is no longer refreshed.
        if (this.#cache.get(key) === entry && this.#hot(entry)) this.#scheduleRefresh(key, entry);
      }, dueIn);
      entry.timer.unref();
    }
  }

  /** Starts the next queued background refresh, when none runs (one at a time, on this node's pool). */
  #nextRefresh(): void {
    const rest = this.#refreshRestAt - Date.now();
    if (rest > 0 && !this.#stopped && this.#refreshQueue.length > 0) {
      this.#refreshRestTimer ??= setTimeout(() => {
        this.#refreshRestTimer = undefined;
        this.#nextRefresh();
      }, rest);
      this.#refreshRestTimer.unref();
      return;
    }
    while (!this.#stopped && !this.#refreshingRead) {
      const key = this.#refreshQueue.shift();
      if (key === undefined) return;
      const entry = this.#cache.get(key);
      if (!entry) continue;
      entry.queued = false;
      if (entry.computing || !entry.lastRead) continue;
      const { request, context, at } = entry.lastRead;
      // A default period ends at the message time: the refresh's is the latest read's, moved on by the
      // time since it came, so the answer is the one a read arriving now would get.
      const eventTime = context.eventTime && new Date(context.eventTime.getTime() + Date.now() - at);
      const refreshStarted = Date.now();
      this.#refreshingRead = this.#compute(key, entry, request, { ...context, eventTime })
        .then((result) => {
          if (!result.success)
            this.logger?.warn({ error: result.error }, 'refreshing a cached analytics read failed');
        })
        .catch((err: unknown) => this.logger?.warn({ err }, 'refreshing a cached analytics read failed'))
        .then(() => {
          this.#refreshingRead = undefined;
          const took = Date.now() - refreshStarted;
          this.#refreshRestAt = Date.now() + took * (1 / this.#refreshDuty - 1);
          this.#nextRefresh();
        });
    }
  }

  /** Computes a global read into its cache entry (the others asking meanwhile join it). */
  async #compute(
    key: string,
    entry: CacheEntry,
    request: AnalyticsRequest,
    context: ExecuteContext,
  ): Promise<ModelResult> {
    const computedAt = new Date();
    entry.startedAt = computedAt.getTime();
    const reading = this.#read(request, context);
    const computing = reading.then(
      ({ result, asOf }) => (result.success ? { data: result.data, asOf, computedAt } : undefined),
      () => undefined,
    );
    entry.computing = computing;
    try {
      const { result } = await reading;
      const answer = await computing;
      if (answer && (!entry.answer || entry.answer.computedAt < computedAt)) entry.answer = answer;
      return result;
    } finally {
      if (entry.computing === computing) entry.computing = undefined;
      // Refresh-ahead: the next computation of a key still read is due at half this answer's age.
      if (this.#hot(entry) && this.#cache.get(key) === entry) this.#scheduleRefresh(key, entry);
    }
  }

  #cached(
    request: AnalyticsRequest,
    context: ExecuteContext,
    answer: Answer,
    startedAt: number,
  ): ModelResult {
    return buildResult(
      { success: true, data: answer.data, error: null },
      {
        correlationId: request.correlation_id,
        operation: request.operation,
        node: this.nodeName,
        startedAt,
      },
      context.source,
      { as_of: answer.asOf.toISOString(), cached: true },
    );
  }

  /** One read from the database, stating when its figures were read (the oldest part, if reused). */
  async #read(
    request: AnalyticsRequest,
    context: ExecuteContext,
  ): Promise<{ result: ModelResult; asOf: Date }> {
    const started = new Date();
    const result = await super.executeEffect(request, context);
    const before = (result.data as DatedData | null)?.[READ_BEFORE];
    const asOf = before && before < started ? before : started;
    if (result.success) result.metadata.as_of = asOf.toISOString();
    return { result, asOf };
  }

  /** The cached top patterns; a stale copy is answered while one refresh runs on its own connection. */
  async #topPatterns(scope: EffectScope): Promise<TopPatterns> {
    const cached = this.#top;
    if (this.#topMaxAgeMs > 0 && cached) {
      if (Date.now() - cached.asOf.getTime() > this.#topMaxAgeMs && !this.#refreshing) {
        this.#refreshing = this.pool
          .query<Row>(TOP_PATTERNS_SQL)
          .then(({ rows }) => {
            this.#top = { rows, asOf: new Date() };
          })
          .catch((err: unknown) => this.logger?.warn({ err }, 'refreshing the top patterns failed'))
          .finally(() => {
            this.#refreshing = undefined;
          });
      }
      return cached;
    }
    const asOf = new Date();
    const { rows } = await this.#query<Row>(scope, TOP_PATTERNS_SQL, []);
    const fresh = { rows, asOf };
    if (this.#topMaxAgeMs > 0) this.#top = fresh;
    return fresh;
  }

  /** One statement of a read, not started once the caller's deadline has passed (the effect runner cancels
   * one still running then). */
  #query<R extends QueryResultRow = Row>(scope: EffectScope, text: string, values: unknown[]) {
    checkDeadline(scope.deadline);
    return scope.client.query<R>(text, values);
  }

  protected readonly handlers: Handlers<'pattern.analytics.compute'> = {
    compute_analytics: async (request, scope) => {
      const { client, eventTime } = scope;
      const period = periodOf(request, eventTime, 30);
      const patternId = patternOf(request);
      // A new pattern_analytics row takes its id from the message identity (migration 015's column
      // default reads this transaction-local setting), so a replay stores the same analytics_id; a
      // recomputed period keeps the id it was first stored with. The named pattern must exist (checked in
      // the same round trip).
      const { rows: found } = await client.query<{ found: boolean }>(
        `SELECT set_config('pattern_worker.analytics_id', $1, true) IS NOT NULL
            AND ($2::uuid IS NULL OR EXISTS (SELECT 1 FROM pattern_templates WHERE id = $2)) AS found`,
        [scope.newId('analytics'), patternId],
      );
      if (patternId && found[0]?.found !== true) throw notFound(patternId);
      const { rows } = await client.query<Row>(
        `SELECT id AS analytics_id, pattern_id, period_start, period_end, total_usage_count, success_count,
              failure_count, success_rate, average_execution_time_ms, average_quality_improvement, top_patterns,
              trend_direction, trend_strength, computed_at
         FROM compute_pattern_analytics_row($1, $2, $3, $4)`,
        [period.start, period.end, patternId, eventTime],
      );
      return rows[0];
    },

    // The seed: one pattern's events from period_start (default 90 days back) per day, week or month.
    // Ours beside: without pattern_id, every pattern (from the hourly rollup); period_end honoured.
    get_usage_trends: async (request, scope) => {
      const period = periodOf(request, scope.eventTime, 90);
      const patternId = patternOf(request);
      const source = patternId
        ? 'usage_by_day($1, $2, $4::uuid)'
        : 'usage_global_by_day($1, $2) WHERE $4::uuid IS NULL';
      const { rows } = await this.#query<Row>(
        scope,
        `SELECT to_char(date_trunc($3, day::timestamp), 'YYYY-MM-DD') AS bucket, sum(usage_count) AS n,
              sum(success_count) AS ok, sum(execution_time_sum) AS esum, sum(execution_time_count) AS en,
              sum(quality_improvement_sum) AS qsum, sum(quality_improvement_count) AS qn
         FROM ${source}
        GROUP BY 1 HAVING sum(usage_count) > 0 ORDER BY 1`,
        [period.start, period.end, request.aggregate_by, patternId],
      );
      return rows.map((r) => ({
        period: `${String(r.bucket)}T00:00:00.000Z`,
        usage_count: Number(r.n),
        success_count: Number(r.ok),
        success_rate: Number(r.ok) / Number(r.n),
        avg_execution_time_ms: ratio(r.esum, r.en),
        avg_quality_improvement: ratio(r.qsum, r.qn),
        bucket: String(r.bucket),
        failure_count: Number(r.n) - Number(r.ok),
      }));
    },

    // The seed: v_pattern_quality_trends, all time, newest 100 (pattern, day) rows. The daily rollup's
    // (day, usage_count) index serves that order; within a day the busiest pattern comes first.
    get_quality_trends: async (request, scope) => {
      const patternId = patternOf(request);
      const hasPeriod = Boolean(request.period_start || request.period_end);
      const period = hasPeriod ? periodOf(request, scope.eventTime, 30) : null;
      const source = period
        ? 'usage_by_pattern_day($2, $3, $1::uuid)'
        : `pattern_usage_daily WHERE ($1::uuid IS NULL OR pattern_id = $1)
             AND $2::timestamptz IS NULL AND $3::timestamptz IS NULL`;
      const { rows } = await this.#query<Row>(
        scope,
        `SELECT d.pattern_id, p.pattern_name, p.pattern_type, to_char(d.day, 'YYYY-MM-DD') AS usage_date,
              d.usage_count, d.success_count, d.quality_improvement_sum AS qsum,
              d.quality_improvement_count AS qn
         FROM (SELECT * FROM ${source}) d
         JOIN pattern_templates p ON p.id = d.pattern_id
        WHERE d.usage_count > 0
        ORDER BY d.day DESC, d.usage_count DESC, d.pattern_id
        LIMIT 100`,
        [patternId, period?.start ?? null, period?.end ?? null],
      );
      return rows.map((r) => ({
        id: r.pattern_id,
        pattern_name: r.pattern_name,
        pattern_type: r.pattern_type,
        usage_date: r.usage_date,
        usage_count: Number(r.usage_count),
        avg_quality_improvement: ratio(r.qsum, r.qn),
        success_rate: Number(r.success_count) / Number(r.usage_count),
        pattern_id: r.pattern_id,
        success_count: Number(r.success_count),
        quality_samples: Number(r.qn),
      }));
    },

    // The seed: one pattern's all-time profile. Ours beside: without pattern_id (the seed refused it),
    // patterns ranked over a period (default 30 days).
    get_effectiveness: async (request, scope) => {
      const patternId = patternOf(request);
      if (patternId) {
        const { rows } = await this.#query<Row>(
          scope,
          `SELECT p.id AS pattern_id, p.pattern_name, p.pattern_type, p.confidence_score,
                p.usage_count AS total_usage, p.success_count AS successes, p.success_rate,
                p.avg_execution_time_ms, p.avg_quality_improvement,
                (SELECT min(e.used_at) FROM pattern_usage_events e WHERE e.pattern_id = p.id) AS first_used,
                (SELECT max(e.used_at) FROM pattern_usage_events e WHERE e.pattern_id = p.id) AS last_used
           FROM pattern_templates p WHERE p.id = $1`,
          [patternId],
        );
        if (!rows[0]) throw notFound(patternId);
        return rows[0];
      }
      const period = periodOf(request, scope.eventTime, 30);
      // Effectiveness: success rate scaled by the average quality improvement (1 + improvement), so a
      // pattern that always succeeds and improves quality by 0.2 scores 1.2.
      const { rows } = await this.#query<Row>(
        scope,
        `SELECT u.pattern_id, p.pattern_name, u.n AS usage_count, u.ok AS success_count,
              round(u.ok::numeric / u.n, 6) AS success_rate,
              round(u.qsum / nullif(u.qn, 0), 6) AS average_quality_improvement,
              round((u.ok::numeric / u.n) * (1 + coalesce(u.qsum / nullif(u.qn, 0), 0)), 6) AS effectiveness_score
         FROM (SELECT pattern_id, sum(usage_count) AS n, sum(success_count) AS ok,
                      sum(quality_improvement_sum) AS qsum, sum(quality_improvement_count) AS qn
                 FROM usage_by_pattern_day($1, $2, NULL) GROUP BY pattern_id) u
         JOIN pattern_templates p ON p.id = u.pattern_id
        WHERE u.n > 0
        ORDER BY effectiveness_score DESC, u.n DESC, u.pattern_id
        LIMIT $3`,
        [period.start, period.end, request.limit],
      );
      return { period_start: period.start, period_end: period.end, patterns: rows };
    },

    // The seed: all-time totals and v_top_patterns' first ten. Ours beside: deprecated patterns,
    // relationships, all-time averages, and a period's usage (default: the 30 days before the message).
    get_global_stats: async (request, scope) => {
      const period = periodOf(request, scope.eventTime, 30);
      const [totals, top] = [
        await this.#query<Row>(
          scope,
          `SELECT c.*, h.n, h.ok, h.esum, h.en, h.qsum, h.qn, w.n AS pn, w.ok AS pok, w.esum AS pesum,
                w.en AS pen, w.qsum AS pqsum, w.qn AS pqn
           FROM v_pattern_counters c,
                (SELECT sum(usage_count) AS n, sum(success_count) AS ok, sum(execution_time_sum) AS esum,
                        sum(execution_time_count) AS en, sum(quality_improvement_sum) AS qsum,
                        sum(quality_improvement_count) AS qn
                   FROM usage_global_hourly) h,
                (SELECT sum(usage_count) AS n, sum(success_count) AS ok, sum(execution_time_sum) AS esum,
                        sum(execution_time_count) AS en, sum(quality_improvement_sum) AS qsum,
                        sum(quality_improvement_count) AS qn
                   FROM usage_global_by_day($1, $2)) w`,
          [period.start, period.end],
        ),
        await this.#topPatterns(scope),
      ];
      const t = totals.rows[0] ?? {};
      const events = Number(t.n ?? 0);
      const used = Number(t.used_patterns ?? 0);
      const stats = {
        total_patterns: Number(t.total_patterns ?? 0),
        active_patterns: Number(t.total_patterns ?? 0) - Number(t.deprecated_patterns ?? 0),
        total_usage_events: events,
        avg_confidence: ratio(t.confidence_sum, t.confidence_count),
        avg_success_rate: ratio(t.success_rate_sum, used),
        patterns_used: used,
        global_success_rate: ratio(t.ok, events),
        top_patterns: top.rows,
        deprecated_patterns: Number(t.deprecated_patterns ?? 0),
        total_relationships: Number(t.total_relationships ?? 0),
        success_count: Number(t.ok ?? 0),
        average_execution_time_ms: ratio(t.esum, t.en),
        average_quality_improvement: ratio(t.qsum, t.qn),
        period: {
          period_start: period.start,
          period_end: period.end,
          usage_count: Number(t.pn ?? 0),
          success_count: Number(t.pok ?? 0),
          success_rate: ratio(t.pok, t.pn),
          average_execution_time_ms: ratio(t.pesum, t.pen),
          average_quality_improvement: ratio(t.pqsum, t.pqn),
        },
      };
      // Not serialised (a symbol key): when the reused top patterns were read, for metadata.as_of.
      return Object.defineProperty(stats, READ_BEFORE, { value: top.asOf, enumerable: false });
    },
  };
}
