// Composition root: wires configuration, database, Kafka, effect nodes and the worker together.
import { configWarnings, decompressedBatchBytes, type Config } from './config.ts';
import type { PatternRequest } from './contracts/requests.ts';
import { TopicNames, type RequestTopic } from './contracts/topics.ts';
import { migrationStatus } from './db/migrate.ts';
import { createPool, warmUpPool, type Pool } from './db/pool.ts';
import { startDatabaseProbe } from './db/probe.ts';
import { startPruner } from './nodes/identity-pruning.ts';
import { NodePatternAnalyticsEffect } from './nodes/index.ts';
import { createNodes } from './messaging/stages/dispatch.ts';
import { asError } from './contracts/errors.ts';
import { createKafka } from './messaging/kafka/client.ts';
import { LANE_NAMES, LANES, laneGroupId } from './messaging/lanes.ts';
import { Lifecycle } from './messaging/engine/lifecycle.ts';
import { observeMetrics, observeTracing } from './messaging/stages/observers.ts';
import { createTopics, missingTopics } from './messaging/kafka/topic-admin.ts';
import { TopicDirectory } from './messaging/kafka/topic-directory.ts';
import { CommittedOffsets } from './messaging/kafka/committed-offsets.ts';
import { UnitPipeline } from './messaging/stages/unit-pipeline.ts';
import { Worker } from './messaging/kafka/worker.ts';
import type { LaneSettings } from './messaging/engine/settings.ts';
import { checkRecord } from './messaging/stages/record-check.ts';
import { tracePool } from './db/traced-pool.ts';
import { startHealthServer, type HealthServer, type MetricsEndpoint } from './telemetry/health.ts';
import { createWorkerMetrics } from './telemetry/metrics.ts';
import type { Logger } from './telemetry/logger.ts';
import { Readiness } from './telemetry/readiness.ts';

export function createDatabasePool(config: Config, logger?: Logger): Pool {
  const pool = createPool({
    connectionString: config.DATABASE_URL,
    min: config.DB_POOL_MIN,
    max: config.DB_POOL_MAX,
    statementTimeoutMs: config.DB_STATEMENT_TIMEOUT_MS,
    applicationName: config.KAFKA_CLIENT_ID,
    ...(logger ? { logger } : {}),
  });
  return tracePool(pool);
}

/** The analytics lane's pool: its own connections, statement timeout and parallelism (README "Analytics"). */
export function createAnalyticsPool(config: Config, logger?: Logger): Pool {
  const pool = createPool({
    connectionString: config.DATABASE_URL,
    min: 0,
    max: config.DB_ANALYTICS_POOL_MAX,
    statementTimeoutMs: config.DB_ANALYTICS_STATEMENT_TIMEOUT_MS,
    parallelWorkers: config.DB_ANALYTICS_PARALLEL_WORKERS,
    applicationName: `${config.KAFKA_CLIENT_ID}-analytics`,
    ...(logger ? { logger } : {}),
  });
  return tracePool(pool);
}

/**
 * Fault injection for the crash tests: WORKER_FAULT_KILL_AFTER_UNITS=N makes the process SIGKILL itself
 * right after the N-th unit's effects are committed, before its results are published or its offset
 * committed. Never set in production.
 */
function installFaultHooks(lifecycle: Lifecycle): void {
  const limit = Number(process.env.WORKER_FAULT_KILL_AFTER_UNITS ?? 0);
  if (limit > 0) {
    let units = 0;
    lifecycle.on('unit.applied', () => {
      if (++units >= limit) process.kill(process.pid, 'SIGKILL');
    });
  }
  // WORKER_FAULT_THROW_ON=<text>: a try of a unit with a message whose value contains <text> throws an
  // error that is not transient, outside any effect node (the bounded-retry tests). Never in production.
  const marker = process.env.WORKER_FAULT_THROW_ON;
  if (marker) {
    lifecycle.scope((unit, work) => {
      if (unit.messages.some((m) => m.value?.includes(marker))) {
        return Promise.reject(
          new TypeError(`injected fault (WORKER_FAULT_THROW_ON) at offset ${unit.messages[0]?.offset}`),
        );
      }
      return work();
    });
  }
}

/** Settings shared by every lane of this process. */
function commonSettings(config: Config, options: WorkerAppOptions) {
  return {
    maxAttempts: config.WORKER_MAX_ATTEMPTS,
    backoff: { initialMs: config.WORKER_RETRY_INITIAL_MS, maxMs: config.WORKER_RETRY_MAX_MS },
    maxBatch: config.WORKER_BATCH_SIZE,
    // With WORKER_BATCH_SIZE events of up to 1 MiB each, a batch could otherwise need hundreds of MiB,
    // more than the shipped heap settings allow.
    maxBatchBytes: 4 * 1024 * 1024,
    maxBufferedMessages: config.WORKER_PARTITION_BUFFER,
    maxUncommittedMessages: config.WORKER_PARTITION_BUFFER * 4,
    commitIntervalMs: config.WORKER_COMMIT_INTERVAL_MS,
    maxBufferedBytes: Math.max(16 * 1024 * 1024, config.WORKER_MAX_MESSAGE_BYTES * 4),
    maxPendingPublishBytes: Math.max(16 * 1024 * 1024, config.WORKER_MAX_RESULT_BYTES * 4),
    // One record batch over this is still fetched whole (KIP-74), so a large request never wedges.
    maxBytesPerPartition: 1024 * 1024,
    maxDecompressedBatchBytes: decompressedBatchBytes(config),
    fromBeginning: true,
    endOffset: options.endOffset,
  };
}

/** The lanes of a live worker, or the single lane of a replay pass over `topics`: built once, passed whole. */
export function laneSettings(config: Config, options: WorkerAppOptions): LaneSettings[] {
  const names = new TopicNames(config.TOPIC_PREFIX);
  const common = commonSettings(config, options);
  const startOffsets = options.startOffsets ?? [];
  const baseGroupId = options.groupId ?? config.KAFKA_GROUP_ID;
  if (options.topics) {
    const topics = options.topics.map((t) => names.request(t));
    return [
      {
        ...common,
        name: 'replay',
        groupId: baseGroupId,
        topics,
        concurrency: config.WORKER_REPLAY_CONCURRENCY,
        maxRatePerSecond: config.WORKER_REPLAY_MAX_RATE ?? 0,
        startOffsets,
      },
    ];
  }
  const here = new Set(config.WORKER_LANES);
  return LANE_NAMES.filter((lane) => here.has(lane)).map((lane) => {
    const topics = LANES[lane].topics.map((t) => names.request(t));
    return {
      ...common,
      name: lane,
      groupId: laneGroupId(baseGroupId, lane),
      migrateOffsetsFrom: baseGroupId,
      topics,
      concurrency: config[LANES[lane].concurrencyVariable],
      // Searches first: on a small host, write transactions side by side take the database from them.
      // Only searches this process runs can be seen; a reads lane elsewhere has its own event loop.
      yieldTo:
        lane === 'writes' && here.has('reads')
          ? {
              lane: 'reads',
              // The engine never runs more than the lane's own concurrency.
              concurrency: config.WORKER_WRITES_CONCURRENCY_WHILE_READS,
            }
          : undefined,
      // A write may have timed out waiting for a lock another transaction held; a read over the same data
      // takes as long again: one more try, as the wire contract asks, then INTERNAL and a dead letter.
      maxTimeoutAttempts: lane === 'writes' ? undefined : 2,
      maxRatePerSecond: 0,
      startOffsets: startOffsets.filter((s) => topics.includes(s.topic)),
    };
  });
}

export class MissingTopicsError extends Error {
  override name = 'MissingTopicsError';
}

export interface WorkerApp {
  readiness: Readiness;
  health: HealthServer;
  stop(): Promise<void>;
}

export interface WorkerAppOptions {
  config: Config;
  logger: Logger;
  /** The engine's lifecycle events; subscribe before start (replay counts its progress there). */
  lifecycle?: Lifecycle;
  /** Overrides for replay: its own group, some topics (one lane), no results, an end offset per partition. */
  groupId?: string;
  topics?: RequestTopic[];
  publishResults?: boolean;
  /** False in a replay: reply topics and a redrive's original are not looked up in the cluster
   * (PipelineOptions.directory, committedOffsets); the live outcomes say what was refused. */
  clusterChecks?: boolean;
  endOffset?: (topic: string, partition: number) => bigint | undefined;
  select?: (request: PatternRequest | undefined) => boolean;
  startOffsets?: { topic: string; partition: number; offset: string }[];
  /** Serves /metrics (from startTelemetry). */
  metricsEndpoint?: MetricsEndpoint;
}

export async function startWorkerApp(options: WorkerAppOptions): Promise<WorkerApp> {
  const { config, logger } = options;
  const readiness = new Readiness();
  const health = await startHealthServer({
    port: config.PORT,
    readiness,
    ...(options.metricsEndpoint ? { metrics: options.metricsEndpoint } : {}),
  });
  const pool = createDatabasePool(config, logger);
  const analyticsPool = createAnalyticsPool(config, logger);
  const probe = startDatabaseProbe(pool, (ok, detail) => {
    readiness.set('database', ok, detail);
    logger[ok ? 'info' : 'warn']({ detail }, ok ? 'database reachable' : 'database unreachable');
  });
  const names = new TopicNames(config.TOPIC_PREFIX);
  const kafka = createKafka(config, logger);
  const admin = kafka.admin();
  let worker: Worker<ReturnType<UnitPipeline['prepare']>> | undefined;
  let pruner: { stop(): void } | undefined;
  let analytics: NodePatternAnalyticsEffect | undefined;
  for (const warning of configWarnings(config)) logger.warn(warning);

  const cleanup = async () => {
    probe.stop();
    pruner?.stop();
    await worker
      // Running units get 60% of the bound: the rest is for committing and leaving the groups, so a stop
      // that waits out its units still hands its partitions over at once, instead of leaving members the
      // broker keeps for a session timeout after the process is gone.
      ?.stop(Math.floor(config.WORKER_SHUTDOWN_TIMEOUT_MS * 0.6))
      .catch((err: unknown) => logger.error({ err }, 'stopping the consumer failed'));
    await admin.disconnect().catch(() => undefined);
    analytics?.stopRefreshing();
    await pool.end().catch(() => undefined);
    await analyticsPool.end().catch(() => undefined);
    await health.close();
  };

  try {
    const migrations = await migrationStatus(pool);
    readiness.set(
      'migrations',
      migrations.current,
      migrations.current ? 'current' : `pending: ${migrations.pending.join(', ')}`,
    );
    if (!migrations.current) {
      logger.warn({ pending: migrations.pending }, 'database migrations are pending; run "patterns migrate"');
    }

    await admin.connect();
    if (config.WORKER_CREATE_TOPICS) {
      const created = await createTopics(admin, names);
      if (created.length > 0) logger.info({ created }, 'created topics');
    }
    const missing = await missingTopics(admin, names);
    if (missing.length > 0) {
      throw new MissingTopicsError(
        `these topics do not exist: ${missing.join(', ')}. Create them with "patterns topics create" ` +
          '(or set WORKER_CREATE_TOPICS=true).',
      );
    }

    const lanes = laneSettings(config, options);
    const groupOfTopic = new Map(lanes.flatMap((l) => l.topics.map((t) => [t, l.groupId] as const)));
    const groupOf = (topic: string) => groupOfTopic.get(topic) ?? options.groupId ?? config.KAFKA_GROUP_ID;
    const lifecycle =
      options.lifecycle ??
      new Lifecycle((event, err) => logger.error({ err, event }, 'a lifecycle listener failed'));
    const metrics = createWorkerMetrics(groupOf);
    metrics.watchPool(pool);
    observeMetrics(lifecycle, metrics);
    observeTracing(lifecycle, groupOf);
    installFaultHooks(lifecycle);
    lifecycle.on('unit.failed', ({ failure }) => {
      if (failure.kind === 'transient' && failure.source === 'database')
        probe.reportFailure(`operation failed: ${failure.reason}`);
    });
    const nodes = createNodes(pool, {
      logger,
      maxResultBytes: config.WORKER_MAX_RESULT_BYTES,
      readTimeoutMs: config.DB_READS_STATEMENT_TIMEOUT_MS,
    });
    const work = new UnitPipeline({
      names,
      nodes: {
        ...nodes,
        analytics: (analytics = new NodePatternAnalyticsEffect(analyticsPool, {
          logger,
          topPatternsMaxAgeMs: config.ANALYTICS_TOP_PATTERNS_MAX_AGE_MS,
          resultMaxAgeMs: config.ANALYTICS_RESULT_MAX_AGE_MS,
          refreshAheadMs: config.ANALYTICS_REFRESH_AHEAD_MS,
        })),
      },
      directory: options.clusterChecks === false ? undefined : new TopicDirectory(admin),
      committedOffsets: options.clusterChecks === false ? undefined : new CommittedOffsets(admin),
      consumerGroupOf: groupOf,
      maxMessageBytes: config.WORKER_MAX_MESSAGE_BYTES,
      maxResultBytes: config.WORKER_MAX_RESULT_BYTES,
      maxKeyBytes: config.WORKER_MAX_KEY_BYTES,
      replyTopics: config.WORKER_REPLY_TOPICS,
      publishResults: options.publishResults !== false,
      logger,
      lifecycle,
      select: options.select,
    });
    for (const lane of lanes) metrics.laneBudget(lane.name, lane.concurrency);
    metrics.watchPartitions(() =>
      (worker?.lanes ?? []).flatMap((l) =>
        l.engine.partitionWaits().map((w) => ({ ...w, lane: l.settings.name })),
      ),
    );
    worker = new Worker({
      kafka,
      lanes,
      work,
      checkRecord: (record) => checkRecord(record, work.recordLimits),
      lifecycle,
      logger,
      readiness,
      settle: { timeoutMs: config.WORKER_READY_SETTLE_MS },
    });
    // Connections first, then the groups: partitions handed to this worker meet ready connections, one
    // per unit its lanes run at once (at least DB_POOL_MIN, which the pool keeps; the others close after
    // 30 s idle), and the analytics lane's on its own pool.
    const unitsOn = (analyticsPool: boolean) =>
      lanes.filter((l) => (l.name === 'analytics') === analyticsPool).reduce((n, l) => n + l.concurrency, 0);
    const warmed = await Promise.all([
      warmUpPool(pool, Math.min(config.DB_POOL_MAX, Math.max(config.DB_POOL_MIN, unitsOn(false)))),
      warmUpPool(analyticsPool, Math.min(unitsOn(true), config.DB_ANALYTICS_POOL_MAX)),
    ]);
    // Then the busiest operations once per connection, rolled back: a backend's first usage batch plans
    // its statements and compiles the statistics triggers, which a handed-over partition would otherwise
    // wait for (README, "Consumer groups, deploys and failures").
    const units = (lane: string) => lanes.find((l) => l.name === lane)?.concurrency ?? 0;
    const rehearsals = migrations.current
      ? await Promise.allSettled([
          ...Array.from({ length: units('writes') }, () => nodes.update.rehearse()),
          ...Array.from({ length: units('reads') }, () => nodes.query.rehearse()),
        ])
      : [];
    const warmError =
      warmed.find((w) => w.error)?.error ??
      rehearsals.flatMap((r) => (r.status === 'rejected' ? [asError(r.reason)] : []))[0];
    if (warmError) logger.warn({ err: warmError.message }, 'warming the database connections failed');
    await worker.start();
    // The live worker keeps the identity store bounded (a replay pass leaves that to it).
    if (config.WORKER_RESULT_RETENTION > 0 && !options.topics) {
      pruner = startPruner({
        pool,
        retentionMs: config.WORKER_RESULT_RETENTION,
        logger,
        onPruned: (rows, bytes) => metrics.pruned(rows, bytes),
      });
    }
    logger.info(
      {
        lanes: Object.fromEntries(
          lanes.map((l) => [l.name, { group: l.groupId, topics: l.topics, concurrency: l.concurrency }]),
        ),
        port: health.port,
      },
      'worker started',
    );
  } catch (err) {
    await cleanup();
    throw err;
  }

  return {
    readiness,
    health,
    async stop() {
      readiness.set('running', false, 'shutting down');
      await cleanup();
    },
  };
}
