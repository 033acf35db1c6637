// One place reads the environment. Every variable is validated here, so a bad value stops the
// process at start with a message that names the variable.
import { z } from 'zod';
import { DEFAULT_MAX_RESULT_BYTES } from './contracts/results.ts';
import { LANE_NAMES, type LaneName } from './messaging/lanes.ts';

const intFrom = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

/** "7d", "12h", "30m", "90s", "500ms", or "0" (never), as milliseconds. */
const duration = z
  .string()
  .regex(/^(0|\d+(ms|s|m|h|d))$/, 'expected a duration such as 7d, 12h, 30m or 0 (never)')
  .transform((v) => {
    if (v === '0') return 0;
    const [, n, unit] = /^(\d+)(ms|s|m|h|d)$/.exec(v) as RegExpExecArray;
    const scale = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[
      unit as 'ms' | 's' | 'm' | 'h' | 'd'
    ];
    return Number(n) * scale;
  });

const boolean = z
  .enum(['true', 'false', '1', '0', 'yes', 'no', ''])
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

/** "a, b,,c" as ["a", "b", "c"]: the items of a comma-separated variable, trimmed, empty ones dropped. */
const commaSeparated = (s: string) =>
  s
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean);

const brokers = z
  .string()
  .min(1)
  .transform(commaSeparated)
  .pipe(z.array(z.string().regex(/^[^:\s]+:\d{1,5}$/, 'expected host:port')).min(1));

const replyTopics = z
  .string()
  .transform(commaSeparated)
  .pipe(
    z
      .array(
        z
          .string()
          .regex(
            /^[A-Za-z0-9._*-]{1,249}$/,
            'expected topic names or patterns (letters, digits, ".", "_", "-", "*")',
          ),
      )
      .min(1, 'expected at least one topic name or pattern'),
  );

/** "writes,reads": some of the lanes, each once, in any order. */
const laneList = z
  .string()
  .transform(commaSeparated)
  .pipe(
    z
      .array(
        z.string().refine((l): l is LaneName => (LANE_NAMES as string[]).includes(l), {
          error: (i) => `unknown lane "${String(i.input)}": expected some of ${LANE_NAMES.join(', ')}`,
        }),
      )
      .min(1, `expected one or more of ${LANE_NAMES.join(', ')}, separated by commas`)
      .refine((l) => new Set(l).size === l.length, 'names a lane twice'),
  );

export const configSchema = z
  .object({
    KAFKA_BROKERS: brokers.default(['127.0.0.1:9092']),
    DATABASE_URL: z
      .string()
      .regex(/^postgres(ql)?:\/\//, 'expected a postgres:// or postgresql:// URL')
      .default('postgres://postgres@127.0.0.1:5432/postgres'),
    KAFKA_GROUP_ID: z.string().min(1).default('pattern-worker'),
    KAFKA_CLIENT_ID: z.string().min(1).default('pattern-worker'),
    TOPIC_PREFIX: z
      .string()
      .regex(/^[A-Za-z0-9._-]*$/, 'only letters, digits, ".", "_" and "-" are allowed in topic names')
      .default(''),
    PORT: intFrom(0, 65535).default(8080),
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    KAFKA_SASL_MECHANISM: z.enum(['plain', 'scram-sha-256', 'scram-sha-512']).optional(),
    KAFKA_SASL_USERNAME: z.string().optional(),
    KAFKA_SASL_PASSWORD: z.string().optional(),
    KAFKA_SSL: boolean.default(false),
    /** PEM files: the CA that signed the brokers' certificates, and a client certificate and key (mTLS). */
    KAFKA_SSL_CA_FILE: z.string().optional(),
    KAFKA_SSL_CERT_FILE: z.string().optional(),
    KAFKA_SSL_KEY_FILE: z.string().optional(),
    KAFKA_SSL_REJECT_UNAUTHORIZED: boolean.default(true),
    DB_POOL_MIN: intFrom(0, 100).default(5),
    DB_POOL_MAX: intFrom(1, 100).default(20),
    DB_STATEMENT_TIMEOUT_MS: intFrom(0, 3_600_000).default(30_000),
    /** How long a read of the reads lane (search, get_*) may run before it is cancelled in the database and
     * fails as a statement timeout (0: only DB_STATEMENT_TIMEOUT_MS). Its connections are the writes'. */
    DB_READS_STATEMENT_TIMEOUT_MS: intFrom(0, 3_600_000).default(10_000),
    /** No longer read (KIP-848: the broker's group.consumer.session.timeout.ms); warned about when set. */
    KAFKA_SESSION_TIMEOUT_MS: z.string().optional(),
    /** The lanes this process runs; the others are left to processes started with the rest. */
    WORKER_LANES: laneList.default([...LANE_NAMES]),
    /** Units in flight per lane; each holds one connection, so their sum should fit in DB_POOL_MAX. */
    WORKER_WRITES_CONCURRENCY: intFrom(1, 256).default(4),
    /** Units in flight in the writes lane while the reads lane has work running or queued. */
    WORKER_WRITES_CONCURRENCY_WHILE_READS: intFrom(1, 256).default(1),
    WORKER_READS_CONCURRENCY: intFrom(1, 256).default(8),
    WORKER_ANALYTICS_CONCURRENCY: intFrom(1, 256).default(1),
    /** Units in flight of a replay pass (`patterns replay --concurrency` overrides it). */
    WORKER_REPLAY_CONCURRENCY: intFrom(1, 256).default(1),
    /** Messages a replay starts per second at most (`--max-rate`), whatever runs beside it; 0: no limit.
     * Unset: WORKER_REPLAY_LIVE_MAX_RATE while the live worker's lane groups have members, else no limit. */
    WORKER_REPLAY_MAX_RATE: intFrom(0, 10_000_000).optional(),
    /** A replay's rate while a live worker of the same KAFKA_GROUP_ID runs (README "Replay budget"); 0: no limit. */
    WORKER_REPLAY_LIVE_MAX_RATE: intFrom(0, 10_000_000).default(500),
    /** Tries of a message whose failure is not transient, before INTERNAL and a dead letter. */
    WORKER_MAX_ATTEMPTS: intFrom(1, 100).default(5),
    /** Least time between two offset commits of a lane: a unit finished after a quiet spell commits at
     * once, later ones within this interval together at its end (a commit costs about 0.6 ms of CPU,
     * the worker's and the broker's); 0: a commit as each unit finishes. A crash redelivers at most
     * this much more. */
    WORKER_COMMIT_INTERVAL_MS: intFrom(0, 60_000).default(100),
    /** Unfinished messages per partition above which its fetching pauses. */
    WORKER_PARTITION_BUFFER: intFrom(1, 1_000_000).default(2_000),
    /** Replaced by the lane budgets above; read only to say so. */
    WORKER_PARTITIONS_CONCURRENCY: z.string().optional(),
    WORKER_BATCH_SIZE: intFrom(1, 10_000).default(500),
    /** A request key longer than this is refused (pattern ids are 36 bytes). Hashing a key to pick a
     * partition is superlinear in its length, hence the low ceiling. */
    WORKER_MAX_KEY_BYTES: intFrom(36, 4096).default(256),
    /** Where kafka_replyTopic may point: comma-separated topic names, `*` matching any characters.
     * Unset: `<TOPIC_PREFIX>*`, or `pattern.*` without a prefix. The worker's own topics are refused
     * whatever this says. */
    WORKER_REPLY_TOPICS: replyTopics.optional(),
    WORKER_MAX_MESSAGE_BYTES: intFrom(1024, 100 * 1024 * 1024).default(1024 * 1024),
    /** The most bytes one fetched record batch may decompress to; a larger one is refused unread, by its
     * offsets (a few KB of zstd can decompress to gigabytes). At least WORKER_MAX_MESSAGE_BYTES; unset:
     * decompressedBatchBytes(). */
    WORKER_MAX_DECOMPRESSED_BATCH_BYTES: intFrom(1024 * 1024, 1024 * 1024 * 1024).optional(),
    // Below Kafka's default message.max.bytes (1 MiB) with room for headers; raise both together.
    WORKER_MAX_RESULT_BYTES: intFrom(1024, 100 * 1024 * 1024).default(DEFAULT_MAX_RESULT_BYTES),
    WORKER_RETRY_INITIAL_MS: intFrom(1, 60_000).default(200),
    WORKER_RETRY_MAX_MS: intFrom(1, 600_000).default(30_000),
    WORKER_SHUTDOWN_TIMEOUT_MS: intFrom(100, 600_000).default(10_000),
    /** At start, /readyz waits up to this long for every lane to hold the partitions the broker means it
     * to have (those other members are still giving up); 0: ready once the lanes have joined. */
    WORKER_READY_SETTLE_MS: intFrom(0, 600_000).default(10_000),
    WORKER_CREATE_TOPICS: boolean.default(false),
    /** Result bodies in the identity store older than this are pruned to their ids; 0 keeps them all. */
    WORKER_RESULT_RETENTION: duration.default(7 * 86_400_000),
    /** The analytics lane's own connections (not counted in DB_POOL_MAX), so analytics never take the
     * connections ingestion and searches need; one more than its units, for the top-patterns refresh (a
     * cached global read's background refresh may wait briefly for one of them; 3 avoids that). */
    DB_ANALYTICS_POOL_MAX: intFrom(1, 100).default(2),
    /** Statement timeout of the analytics connections (0: none). */
    DB_ANALYTICS_STATEMENT_TIMEOUT_MS: intFrom(0, 3_600_000).default(5_000),
    /** Parallel workers one analytics statement may use (max_parallel_workers_per_gather). */
    DB_ANALYTICS_PARALLEL_WORKERS: intFrom(0, 64).default(0),
    /** How long get_global_stats reuses its top_patterns (ranked over every pattern); 0: every time. */
    ANALYTICS_TOP_PATTERNS_MAX_AGE_MS: intFrom(0, 86_400_000).default(60_000),
    /** Identical global analytics reads within this age are answered from one computation (metadata.as_of); 0: never. */
    ANALYTICS_RESULT_MAX_AGE_MS: intFrom(0, 3_600_000).default(5_000),
    /** Cached global reads asked within this many ms are recomputed ahead of their expiry (refresh-ahead); 0: only when read past half age. */
    ANALYTICS_REFRESH_AHEAD_MS: intFrom(0, 86_400_000).default(60_000),
  })
  .superRefine((c, ctx) => {
    const tlsFiles = (['KAFKA_SSL_CA_FILE', 'KAFKA_SSL_CERT_FILE', 'KAFKA_SSL_KEY_FILE'] as const).filter(
      (k) => c[k] !== undefined,
    );
    if (tlsFiles.length > 0 && !c.KAFKA_SSL) {
      ctx.addIssue({ code: 'custom', path: [tlsFiles[0] as string], message: 'needs KAFKA_SSL=true' });
    }
    if ((c.KAFKA_SSL_CERT_FILE === undefined) !== (c.KAFKA_SSL_KEY_FILE === undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: [c.KAFKA_SSL_CERT_FILE === undefined ? 'KAFKA_SSL_CERT_FILE' : 'KAFKA_SSL_KEY_FILE'],
        message: 'KAFKA_SSL_CERT_FILE and KAFKA_SSL_KEY_FILE go together (a client certificate and its key)',
      });
    }
    if (
      c.WORKER_MAX_DECOMPRESSED_BATCH_BYTES !== undefined &&
      c.WORKER_MAX_DECOMPRESSED_BATCH_BYTES < c.WORKER_MAX_MESSAGE_BYTES
    ) {
      ctx.addIssue({
        code: 'custom',
        path: ['WORKER_MAX_DECOMPRESSED_BATCH_BYTES'],
        message: `must be at least WORKER_MAX_MESSAGE_BYTES (${c.WORKER_MAX_MESSAGE_BYTES}): a batch holds whole messages`,
      });
    }
    if (c.DB_POOL_MIN > c.DB_POOL_MAX) {
      ctx.addIssue({ code: 'custom', path: ['DB_POOL_MIN'], message: 'must not exceed DB_POOL_MAX' });
    }
    if (c.KAFKA_SASL_MECHANISM && (!c.KAFKA_SASL_USERNAME || !c.KAFKA_SASL_PASSWORD)) {
      ctx.addIssue({
        code: 'custom',
        path: ['KAFKA_SASL_USERNAME'],
        message: 'KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD are required with KAFKA_SASL_MECHANISM',
      });
    }
  });

export type Config = z.infer<typeof configSchema>;

/** What a record batch may decompress to when nothing says otherwise (the operator tools, the client). */
export const DEFAULT_MAX_DECOMPRESSED_BATCH_BYTES = 16 * 1024 * 1024;

/** WORKER_MAX_DECOMPRESSED_BATCH_BYTES, else the default, or WORKER_MAX_MESSAGE_BYTES where that is larger. */
export function decompressedBatchBytes(c: Config): number {
  return (
    c.WORKER_MAX_DECOMPRESSED_BATCH_BYTES ??
    Math.max(DEFAULT_MAX_DECOMPRESSED_BATCH_BYTES, c.WORKER_MAX_MESSAGE_BYTES)
  );
}

/** Settings that work but defeat a purpose; the worker logs each at start. */
export function configWarnings(c: Config): string[] {
  const warnings: string[] = [];
  // The writes and reads lanes share the main pool; the analytics lane has a pool of its own.
  const runs = (lane: LaneName) => c.WORKER_LANES.includes(lane);
  const lanes =
    (runs('writes') ? c.WORKER_WRITES_CONCURRENCY : 0) + (runs('reads') ? c.WORKER_READS_CONCURRENCY : 0);
  if (lanes > c.DB_POOL_MAX) {
    warnings.push(
      `WORKER_WRITES_CONCURRENCY + WORKER_READS_CONCURRENCY is ${lanes}, more than DB_POOL_MAX ` +
        `(${c.DB_POOL_MAX}): lanes will wait for each other's connections. Raise DB_POOL_MAX or lower a lane's concurrency.`,
    );
  }
  if (runs('analytics') && c.WORKER_ANALYTICS_CONCURRENCY > c.DB_ANALYTICS_POOL_MAX) {
    warnings.push(
      `WORKER_ANALYTICS_CONCURRENCY is ${c.WORKER_ANALYTICS_CONCURRENCY}, more than DB_ANALYTICS_POOL_MAX ` +
        `(${c.DB_ANALYTICS_POOL_MAX}): analytics units will wait for connections. Raise DB_ANALYTICS_POOL_MAX or lower WORKER_ANALYTICS_CONCURRENCY.`,
    );
  }
  if (c.KAFKA_SESSION_TIMEOUT_MS !== undefined) {
    warnings.push(
      'KAFKA_SESSION_TIMEOUT_MS is no longer read: the lanes use the consumer group protocol of KIP-848, whose ' +
        'session timeout is the broker\'s group.consumer.session.timeout.ms (README "Consumer groups").',
    );
  }
  if (c.WORKER_PARTITIONS_CONCURRENCY !== undefined) {
    warnings.push(
      'WORKER_PARTITIONS_CONCURRENCY is no longer read: work is bounded per lane by WORKER_WRITES_CONCURRENCY, ' +
        'WORKER_READS_CONCURRENCY and WORKER_ANALYTICS_CONCURRENCY.',
    );
  }
  return warnings;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Reads the configuration; throws ConfigError naming every bad variable. Empty strings count as unset. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const relevant: Record<string, string> = {};
  for (const key of Object.keys(configSchema.shape)) {
    const value = env[key];
    if (value !== undefined && value !== '') relevant[key] = value;
  }
  const parsed = configSchema.safeParse(relevant);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.') || '(config)'}: ${i.message}`);
    throw new ConfigError(`Invalid configuration:\n${lines.join('\n')}`);
  }
  return parsed.data;
}
