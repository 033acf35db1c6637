// `patterns replay`: re-applies request topics through the same effect nodes, with its own consumer
// group, up to the end offsets taken at start. Exactly once per message identity, so replaying onto a
// populated database changes nothing and replaying into an empty one rebuilds it.
import { Command, Option } from 'commander';
import { startWorkerApp } from '../../app.ts';
import { decompressedBatchBytes, loadConfig } from '../../config.ts';
import { TopicNames, type RequestTopic } from '../../contracts/topics.ts';
import { createDatabasePool } from '../../app.ts';
import { migrationStatus } from '../../db/migrate.ts';
import { createKafka } from '../../messaging/kafka/client.ts';
import { KafkaRecordSender } from '../../messaging/kafka/record-sender.ts';
import { MergedRead } from '../../messaging/kafka/replay-reader.ts';
import { Lifecycle } from '../../messaging/engine/lifecycle.ts';
import { OrderedPublisher } from '../../messaging/engine/publisher.ts';
import { readLiveOutcomes } from '../../messaging/operations/live-outcomes.ts';
import { writeTieRank } from '../../messaging/operations/replay-merge.ts';
import { liveGroups, ReplayBudget } from '../../messaging/operations/replay-budget.ts';
import { describeSummary, emptySummary, runReplay } from '../../messaging/operations/replay-driver.ts';
import { createNodes } from '../../messaging/stages/dispatch.ts';
import { checkRecord, recordLimits } from '../../messaging/stages/record-check.ts';
import { UnitPipeline } from '../../messaging/stages/unit-pipeline.ts';
import {
  DEFAULT_REPLAY_TOPICS,
  heldBackNotes,
  heldBackRanges,
  planReplay,
  replayPhases,
  startPositions,
  ReplayTracker,
  type ReplayCounts,
  type ReplayFrom,
} from '../../messaging/operations/replay.ts';
import { cliLogger } from '../logging.ts';
import { parseRequestTopics, parseTime, printableJson, wholeNumber } from '../options.ts';
import { createProgress } from '../progress.ts';

interface ReplayOptions {
  from: ReplayFrom;
  to?: Date;
  topics: RequestTopic[];
  publishResults: boolean;
  group?: string;
  concurrency?: number;
  maxRate?: number;
  json?: boolean;
  /** The replay before issue 22 (phases, one topic at a time): kept for the benchmark's comparison only. */
  legacyPhases?: boolean;
}

export function replayCommand(): Command {
  return new Command('replay')
    .description('Re-apply request topics from a point in time, exactly once, then exit (backfill).')
    .addOption(
      new Option(
        '--from <earliest|iso-time>',
        'where to start: earliest, or the first message at or after a time',
      )
        .makeOptionMandatory()
        .argParser((v) => (v === 'earliest' ? 'earliest' : parseTime('--from', v))),
    )
    .addOption(
      new Option(
        '--to <iso-time>',
        'stop before the first message at or after this time (default: the end now)',
      ).argParser((v) => parseTime('--to', v)),
    )
    .addOption(
      new Option('--topics <list>', 'logical request topics, comma-separated')
        .default(DEFAULT_REPLAY_TOPICS, DEFAULT_REPLAY_TOPICS.join(','))
        .argParser(parseRequestTopics),
    )
    .option(
      '--publish-results',
      'publish results as the live worker does (off: live result consumers see nothing)',
    )
    .addOption(
      new Option(
        '--concurrency <n>',
        "units in flight at once: the replay's share of the database (default WORKER_REPLAY_CONCURRENCY, 1)",
      ).argParser(wholeNumber('--concurrency', 1)),
    )
    .addOption(
      new Option(
        '--max-rate <n>',
        'messages started per second at most, whatever runs beside the replay (0 = no limit). Default ' +
          'WORKER_REPLAY_MAX_RATE; unset: WORKER_REPLAY_LIVE_MAX_RATE (500) while the live worker of ' +
          'KAFKA_GROUP_ID has members in its lane groups, no limit while it has none',
      ).argParser(wholeNumber('--max-rate', 0)),
    )
    .option('--group <id>', "the replay's consumer group (default: <KAFKA_GROUP_ID>.replay.<time>)")
    .option(
      '--json',
      'print one JSON summary on stdout when done (the lines printed otherwise go to stderr with the progress)',
    )
    .addOption(new Option('--legacy-phases', 'the replay before issue 22, for benchmarks only').hideHelp())
    .addHelpText(
      'after',
      `
Every partition of every selected topic is merged into one order by record timestamp (ties: pattern
writes, then usage, then analytics, then partition number), so the live order is reproduced; messages
that touch different patterns run at once, never those that touch the same one. A message the live
worker refused (its dead letter or error result says so) is not applied; one it applied (its result
says so) that this order refuses waits until a message touching the same patterns is applied, then runs
(the live worker saw it after a message appended just after it to another partition). Reads are never
run. A message refused again goes to the dead-letter topic again, marked with the replay's consumer group.

Examples:
  patterns replay --from earliest                  # rebuild a fresh database from every request
  patterns replay --from 2026-11-01T00:00:00Z --to 2026-11-02T00:00:00Z --topics pattern.usage`,
    )
    .action(async (o: ReplayOptions) => {
      const code = o.legacyPhases ? await runPhasedReplay(o) : await runMergedReplay(o);
      process.exitCode = code;
    });
}

/** What both replays start from: the configuration with the command's budget, a logger, names, a group. */
function replaySetup(o: ReplayOptions) {
  const loaded = loadConfig();
  const config = {
    ...loaded,
    PORT: 0,
    WORKER_REPLAY_CONCURRENCY: o.concurrency ?? loaded.WORKER_REPLAY_CONCURRENCY,
    WORKER_REPLAY_MAX_RATE: o.maxRate ?? loaded.WORKER_REPLAY_MAX_RATE,
  };
  const logger = cliLogger(process.env.LOG_LEVEL ?? 'warn', 'stderr');
  const names = new TopicNames(config.TOPIC_PREFIX);
  const groupId =
    o.group ?? `${config.KAFKA_GROUP_ID}.replay.${new Date().toISOString().replace(/[:.]/g, '-')}`;
  return { config, logger, names, groupId };
}

/** The replay's rate: the explicit one, or one that follows the live worker's groups (replay-budget.ts). */
function replayBudget(
  config: ReturnType<typeof replaySetup>['config'],
  admin: Parameters<typeof liveGroups>[0],
  logger: ReturnType<typeof replaySetup>['logger'],
  onChange?: (line: string) => void,
): ReplayBudget {
  return new ReplayBudget({
    fixedRate: config.WORKER_REPLAY_MAX_RATE,
    liveRate: config.WORKER_REPLAY_LIVE_MAX_RATE,
    live: () => liveGroups(admin, config.KAFKA_GROUP_ID),
    ...(onChange ? { onChange } : {}),
    onError: (err) =>
      logger.warn({ err }, "replay: could not describe the live worker's groups; the budget stays as it was"),
  });
}

async function runMergedReplay(o: ReplayOptions): Promise<number> {
  const { config, logger, names, groupId } = replaySetup(o);
  const out = o.json ? process.stderr : process.stdout;
  const pool = createDatabasePool(config, logger);
  const kafka = createKafka(config, logger, '-replay');
  const admin = kafka.admin();
  const sender = new KafkaRecordSender(kafka, logger);
  let reader: MergedRead | undefined;
  let budget: ReplayBudget | undefined;
  try {
    const migrations = await migrationStatus(pool);
    if (!migrations.current) {
      process.stderr.write(
        `replay: database migrations are pending (${migrations.pending.join(', ')}); run "patterns migrate" first\n`,
      );
      return 2;
    }
    await admin.connect();
    const plans = await planReplay(admin, names, o.topics, o.from, o.to);
    budget = replayBudget(config, admin, logger, (line) => out.write(`  ${line}\n`));
    await budget.start();
    out.write(
      `replay: group ${groupId}, results ${o.publishResults ? 'published' : 'not published'}, ` +
        `budget ${config.WORKER_REPLAY_CONCURRENCY} in flight, ${budget.describe()}\n`,
    );
    for (const plan of plans) out.write(`  ${plan.topic}: ${plan.total} messages\n`);
    const heldBack = heldBackNotes(plans);
    for (const note of heldBack) out.write(`  note: ${note}\n`);
    const started = performance.now();

    // What the live worker answered: its refusals are not applied again.
    const ranges = plans.flatMap((p) =>
      p.partitions.map((r) => ({ topic: p.topic, partition: r.partition, start: r.start, end: r.end })),
    );
    const live = await readLiveOutcomes(kafka, admin, names, o.topics, ranges, `${groupId}.outcomes`);
    out.write(
      `  live outcomes: ${live.read} dead letters and results read, ${live.refused.size} requests refused ` +
        `live, ${live.applied.size} applied\n`,
    );
    for (const t of live.truncated) {
      out.write(
        `  note: ${t.topic} lost older records to retention (it holds ${t.since ? `records since ${t.since}` : 'none'}); ` +
          'live refusals of earlier requests are unknown: those requests are applied in the merged order\n',
      );
    }

    const lifecycle = new Lifecycle((event, err) =>
      logger.error({ err, event }, 'a lifecycle listener failed'),
    );
    const limits = recordLimits({
      maxKeyBytes: config.WORKER_MAX_KEY_BYTES,
      maxResultBytes: config.WORKER_MAX_RESULT_BYTES,
    });
    const work = new UnitPipeline({
      names,
      nodes: createNodes(pool, { logger, maxResultBytes: config.WORKER_MAX_RESULT_BYTES }),
      // No check of reply topics: what the live worker refused is in its outcomes (see PipelineOptions).
      consumerGroupOf: () => groupId,
      maxMessageBytes: config.WORKER_MAX_MESSAGE_BYTES,
      maxResultBytes: config.WORKER_MAX_RESULT_BYTES,
      maxKeyBytes: config.WORKER_MAX_KEY_BYTES,
      // As the live worker reads it: a reply topic it allowed is allowed here.
      replyTopics: config.WORKER_REPLY_TOPICS,
      publishResults: Boolean(o.publishResults),
      logger,
      lifecycle,
    });
    await sender.connect();
    const publisher = new OrderedPublisher({
      sender,
      check: (record) => checkRecord(record, limits),
      lane: 'replay',
      lifecycle,
      backoff: { initialMs: config.WORKER_RETRY_INITIAL_MS, maxMs: config.WORKER_RETRY_MAX_MS },
      logger,
    });
    reader = new MergedRead(kafka, ranges, {
      groupId,
      topicOrder: plans.map((p) => p.topic),
      tieRank: writeTieRank,
      logger,
      maxDecompressedBatchBytes: decompressedBatchBytes(config),
    });
    await reader.start(ranges);

    const active = plans.filter((p) => p.total > 0);
    const progress = createProgress(active.map((p) => ({ name: p.topic, total: p.total })));
    const summary = emptySummary();
    const ticker = setInterval(() => {
      for (const p of active) progress.update(p.topic, summary.done[p.topic] ?? 0);
    }, 200);
    try {
      await runReplay({
        source: reader,
        work,
        publisher,
        lifecycle,
        logger,
        refusedLive: live.refused,
        appliedLive: live.applied,
        concurrency: config.WORKER_REPLAY_CONCURRENCY,
        maxRatePerSecond: () => budget?.rate() ?? 0,
        maxBatch: config.WORKER_BATCH_SIZE,
        maxBatchBytes: 4 * 1024 * 1024,
        retry: {
          maxAttempts: config.WORKER_MAX_ATTEMPTS,
          backoff: { initialMs: config.WORKER_RETRY_INITIAL_MS, maxMs: config.WORKER_RETRY_MAX_MS },
        },
        summary,
      });
    } finally {
      clearInterval(ticker);
      for (const p of active) progress.update(p.topic, summary.done[p.topic] ?? 0);
      progress.stop();
    }
    const seconds = (performance.now() - started) / 1000;
    out.write(
      `replay done in ${seconds.toFixed(1)} s: ${summary.messages} messages, ${describeSummary(summary)}\n`,
    );
    if (heldBack.length > 0) {
      out.write(
        `  not replayed: ${heldBack.length} partition(s) stopped at a transaction still open (notes above)\n`,
      );
    }
    if (o.json) {
      const notReplayed = heldBackRanges(plans).map((r) => ({
        ...r,
        from: String(r.from),
        records: Number(r.records),
      }));
      const report = {
        group: groupId,
        seconds: Number(seconds.toFixed(3)),
        ...summary,
        liveOutcomes: {
          read: live.read,
          refused: live.refused.size,
          applied: live.applied.size,
          truncated: live.truncated,
        },
        notReplayed,
      };
      process.stdout.write(`${printableJson(report)}\n`);
    }
    return 0;
  } finally {
    budget?.stop();
    await reader?.close();
    await sender.disconnect().catch(() => undefined);
    await admin.disconnect().catch(() => undefined);
    await pool.end().catch(() => undefined);
  }
}

/** The replay before issue 22: one pass per phase and topic through a worker lane (benchmarks only). */
async function runPhasedReplay(o: ReplayOptions): Promise<number> {
  const { config, logger, names, groupId } = replaySetup(o);
  const admin = createKafka(config, logger, '-replay').admin();
  await admin.connect();
  // The budget is looked at once here: each pass's lane keeps the rate it starts with.
  const budget = replayBudget(config, admin, logger);
  const plans = await budget
    .start()
    .then(() => planReplay(admin, names, o.topics, o.from, o.to))
    .finally(() => {
      budget.stop();
      return admin.disconnect();
    });
  config.WORKER_REPLAY_MAX_RATE = budget.rate();

  const out = process.stdout;
  out.write(
    `replay: group ${groupId}, results ${o.publishResults ? 'published' : 'not published'}, ` +
      `budget ${config.WORKER_REPLAY_CONCURRENCY} in flight, ${budget.describe()}\n`,
  );
  for (const plan of plans) out.write(`  ${plan.topic}: ${plan.total} messages\n`);

  const phases = replayPhases(plans).filter((phase) => phase.plan.total > 0);
  const progress = createProgress(phases.map((p) => ({ name: p.label, total: p.plan.total })));
  const totals: ReplayCounts = { applied: 0, alreadyApplied: 0, deadLettered: 0, failed: 0 };
  const started = performance.now();
  try {
    for (const [index, phase] of phases.entries()) {
      const { plan } = phase;
      const tracker = new ReplayTracker(plan);
      const lifecycle = new Lifecycle((event, err) =>
        logger.error({ err, event }, 'a lifecycle listener failed'),
      );
      tracker.attach(lifecycle);
      // A new group per pass, so that nothing committed earlier moves its start.
      const phaseGroup = `${groupId}.${index + 1}.${plan.logical}`;
      const app = await startWorkerApp({
        config,
        logger,
        lifecycle,
        groupId: phaseGroup,
        topics: [plan.logical],
        startOffsets: startPositions(plan),
        publishResults: Boolean(o.publishResults),
        clusterChecks: false,
        endOffset: tracker.endOffset,
        ...(phase.select ? { select: phase.select } : {}),
      });
      try {
        while (!tracker.complete) {
          progress.update(phase.label, tracker.done);
          await new Promise((r) => setTimeout(r, 200));
        }
        progress.update(phase.label, tracker.done);
      } finally {
        await app.stop();
      }
      for (const k of Object.keys(totals) as (keyof ReplayCounts)[]) totals[k] += tracker.counts[k];
    }
  } finally {
    progress.stop();
  }
  const seconds = (performance.now() - started) / 1000;
  const all = plans.reduce((sum, p) => sum + p.total, 0);
  out.write(
    `replay done in ${seconds.toFixed(1)} s: ${all} messages, applied ${totals.applied}, ` +
      `already applied ${totals.alreadyApplied}, dead-lettered ${totals.deadLettered}` +
      (totals.failed > 0 ? `, failed ${totals.failed}` : '') +
      '\n',
  );
  return 0;
}
