// `patterns replay`: re-applies request topics through the same effect nodes, with its own consumer
// group, up to the end offsets taken at start. Exactly once per message identity, so replaying onto a
// populated database changes nothing and replaying into an empty one rebuilds it.
import { Command, Option } from 'commander';
import { startWorkerApp } from '../../app.ts';
import { loadConfig } from '../../config.ts';
import { TopicNames, type RequestTopic } from '../../contracts/topics.ts';
import { createKafka } from '../../messaging/kafka/client.ts';
import { Lifecycle } from '../../messaging/engine/lifecycle.ts';
import {
  DEFAULT_REPLAY_TOPICS,
  planReplay,
  replayPhases,
  startPositions,
  ReplayTracker,
  type ReplayCounts,
  type ReplayFrom,
} from '../../messaging/operations/replay.ts';
import { cliLogger } from '../logging.ts';
import { parseRequestTopics, parseTime, wholeNumber } from '../options.ts';
import { createProgress } from '../progress.ts';

interface ReplayOptions {
  from: ReplayFrom;
  to?: Date;
  topics: RequestTopic[];
  publishResults: boolean;
  group?: string;
  concurrency?: number;
  maxRate?: number;
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
        'messages started per second at most, so live lanes keep their speed (default WORKER_REPLAY_MAX_RATE, 0 = no limit)',
      ).argParser(wholeNumber('--max-rate', 0)),
    )
    .option(
      '--group <id>',
      'consumer group prefix; each pass gets <id>.<n>.<topic> (default: <KAFKA_GROUP_ID>.replay.<time>)',
    )
    .addHelpText(
      'after',
      `
Topics are replayed one after another in dependency order (pattern.insert, pattern.usage,
pattern.analytics.compute, pattern.search.request), so usage events find their patterns. Reads have no
effect and are left out unless named in --topics. Deletes of patterns are applied in a last pass, so
that usage recorded before a delete still finds its pattern. Messages that fail again go to the
dead-letter topic again, marked with the replay's consumer group.

Examples:
  patterns replay --from earliest                  # rebuild a fresh database from every request
  patterns replay --from 2026-11-01T00:00:00Z --to 2026-11-02T00:00:00Z --topics pattern.usage`,
    )
    .action(async (o: ReplayOptions) => {
      const code = await runReplay(o);
      process.exitCode = code;
    });
}

async function runReplay(o: ReplayOptions): Promise<number> {
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
  const admin = createKafka(config, logger, '-replay').admin();
  await admin.connect();
  const plans = await planReplay(admin, names, o.topics, o.from, o.to).finally(() => admin.disconnect());

  const out = process.stdout;
  const budget =
    `${config.WORKER_REPLAY_CONCURRENCY} in flight` +
    (config.WORKER_REPLAY_MAX_RATE > 0 ? `, at most ${config.WORKER_REPLAY_MAX_RATE} messages/s` : '');
  out.write(
    `replay: group ${groupId}, results ${o.publishResults ? 'published' : 'not published'}, budget ${budget}\n`,
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
