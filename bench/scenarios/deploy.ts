// Scenario "deploy" (issue 25; not in the default run): three workers in one consumer group under a steady
// open-loop load from an independent producer (librdkafka: 100 record_usage events/s and 20 searches/s,
// each with a correlation id and kafka_replyTopic), read back by an independent reader that matches
// results to requests by correlation id. Phases: warm-up (not counted), steady ("before"), a rolling
// restart ("roll": for each worker in turn SIGTERM, start a replacement, wait until it is ready, next),
// steady again ("after roll"), then one worker SIGKILLed and not replaced ("after SIGKILL"). Per phase:
// p50/p99/max request -> result latency (from each request's due time), the longest per-partition stall
// (bench/lib/deploy.ts, stallIntervals), rebalances as the broker logged them; over the run: lost, doubled,
// duplicate results, consumer crashes in the workers' logs.
//
// BENCH_DEPLOY_MIN_READY_S waits that long after each replacement is ready (a Deployment's minReadySeconds);
// BENCH_DEPLOY_ORDER=surge starts each replacement before its old worker stops, as the Helm chart's rolling
// update does, instead of after.
//
// The worker is started by one function (startWorker, below); BENCH_DEPLOY_WORKER_SCRIPT,
// BENCH_DEPLOY_WORKER_ENV (a JSON object of extra variables) and BENCH_DEPLOY_LABEL run the same scenario
// against another build of the worker (another Kafka client, another group layout: groups are matched by
// the prefix KAFKA_GROUP_ID, so `<KAFKA_GROUP_ID>.<lane>` groups count too).
import { execFile } from 'node:child_process';
import { createWriteStream, mkdirSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { generatePatterns, searchQueries, take, usageEvents } from '../lib/dataset.ts';
import { createBenchDatabase, loadPatterns, type BenchDatabase } from '../lib/db.ts';
import {
  asciiTimeline,
  BrokerLog,
  cpuTimes,
  describeMembers,
  LoadProducer,
  longestWithin,
  parseGroupEvents,
  ResultReader,
  stallIntervals,
  windowRows,
  type GroupEvent,
  type GroupMember,
  type Interval,
  type SentRequest,
} from '../lib/deploy.ts';
import { spawnNode, type Child } from '../lib/proc.ts';
import { goal, type ScenarioOptions, type ScenarioResult } from '../lib/scenario.ts';
import { fmt, summarize, type LatencySummary } from '../lib/stats.ts';
import { WORKER_CLI } from './ingestion.ts';

const SEED = 25;
const BROKERS = process.env.KAFKA_BROKERS || '127.0.0.1:9092';
const PARTITIONS = 6;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const exec = promisify(execFile);

/** What one worker process needs to know; everything else is the start function's business. */
export interface WorkerSpec {
  /** w1, w2, w3 for the first three, w4... for replacements. */
  name: string;
  db: BenchDatabase;
  topicPrefix: string;
  groupId: string;
  /** Unique per process, so the broker's member list says which process a member is. */
  clientId: string;
  sessionTimeoutMs?: number;
}

/** A worker implementation under test: how to start one, and what its logs say when a consumer crashes. */
export interface WorkerFlavor {
  label: string;
  start(spec: WorkerSpec): Promise<Child>;
  /** Log lines counted as consumer crashes or restarts, by name. */
  crashLines: Record<string, RegExp>;
}

/** The worker of this checkout, compiled (dist/), as the other scenarios start it. */
export function startWorker(spec: WorkerSpec): Promise<Child> {
  const extra = JSON.parse(process.env.BENCH_DEPLOY_WORKER_ENV || '{}') as Record<string, string>;
  return spawnNode({
    script: process.env.BENCH_DEPLOY_WORKER_SCRIPT || WORKER_CLI,
    args: ['worker'],
    env: {
      DATABASE_URL: spec.db.url,
      KAFKA_BROKERS: BROKERS,
      TOPIC_PREFIX: spec.topicPrefix,
      KAFKA_GROUP_ID: spec.groupId,
      KAFKA_CLIENT_ID: spec.clientId,
      // info: the group joins and assignments are in the logs kept beside the result.
      LOG_LEVEL: 'info',
      OTEL_SDK_DISABLED: 'true',
      ...(spec.sessionTimeoutMs ? { KAFKA_SESSION_TIMEOUT_MS: String(spec.sessionTimeoutMs) } : {}),
      NODE_OPTIONS: process.env.BENCH_WORKER_NODE_OPTIONS ?? '',
      ...extra,
    },
  });
}

export const defaultFlavor: WorkerFlavor = {
  label: process.env.BENCH_DEPLOY_LABEL || '@platformatic/kafka, KIP-848 protocol, a consumer group per lane',
  start: startWorker,
  // src/messaging/kafka/lane-consumer.ts: a member that lost its group (kafkajs builds: its CRASH
  // event), and the lane replacing its consumer.
  crashLines: {
    'consumer crashed': /"msg":"consumer crashed"/,
    'consumer lost its group membership': /"msg":"consumer lost its group membership/,
    'starting a new consumer for the lane': /"msg":"starting a new consumer for the lane"/,
    'the new consumer could not start': /"msg":"the new consumer could not start/,
  },
};

type PhaseName = 'before' | 'roll' | 'after roll' | 'after SIGKILL';
const PHASES: PhaseName[] = ['before', 'roll', 'after roll', 'after SIGKILL'];

interface Running {
  name: string;
  clientId: string;
  child: Child;
  log: string;
  startedAt: number;
}

interface PhaseFigures {
  seconds: number;
  requests: number;
  answered: number;
  latencyMs: LatencySummary;
  /** Requests slower than 1 s (or unanswered), per cent. */
  over1sPercent: number;
  longestStallMs: number;
  longestStallPartition: string | null;
  rebalances: { completed: number; started: number; epochBumps: number };
  /** Share of all CPUs busy during the phase (whole machine), per cent. */
  machineBusyPercent: number;
  /** Results received in the phase that the worker flagged `duplicate` (answered from an identity record). */
  flaggedDuplicates: number;
}

async function createTopics(prefix: string): Promise<void> {
  await exec(process.execPath, [WORKER_CLI, 'topics', 'create', '--partitions', String(PARTITIONS)], {
    env: { ...process.env, KAFKA_BROKERS: BROKERS, TOPIC_PREFIX: prefix, LOG_LEVEL: 'warn' },
    timeout: 60_000,
  });
}

async function deleteTopics(prefix: string): Promise<void> {
  // librdkafka's admin client, like the load: the scenario needs nothing of the worker's Kafka client.
  const script = `
import sys
from confluent_kafka.admin import AdminClient
a = AdminClient({"bootstrap.servers": sys.argv[1]})
names = [t for t in a.list_topics(timeout=15).topics if t.startswith(sys.argv[2])]
for f in a.delete_topics(names, operation_timeout=30).values():
    try:
        f.result()
    except Exception:
        pass
`;
  await exec('/usr/bin/python3', ['-c', script, BROKERS, prefix], { timeout: 60_000 }).catch(() => undefined);
}

export async function runDeploy(options: ScenarioOptions, flavor: WorkerFlavor): Promise<ScenarioResult> {
  const started = Date.now();
  const s = options.smoke
    ? {
        patterns: 200,
        usageRate: 100,
        searchRate: 20,
        warmupS: 1,
        beforeS: 3,
        afterS: 3,
        // Longer than the broker's KIP-848 session timeout (10 s, scripts/kafka.sh), so the kill's stall
        // ends inside the phase.
        afterKillS: 13,
        drainS: 20,
        windowS: 2,
        minReadyS: 0,
        surge: false,
        sessionTimeoutMs: undefined as number | undefined,
      }
    : {
        patterns: 2000,
        usageRate: 100,
        searchRate: 20,
        warmupS: 10,
        beforeS: 40,
        afterS: 40,
        // Longer than a session timeout (the broker's, 10 s in scripts/kafka.sh; a kafkajs build's own
        // KAFKA_SESSION_TIMEOUT_MS), so the group has settled before it ends.
        afterKillS: Number(process.env.BENCH_DEPLOY_AFTER_KILL_S ?? 45),
        drainS: 60,
        windowS: 5,
        minReadyS: Number(process.env.BENCH_DEPLOY_MIN_READY_S ?? 0),
        surge: process.env.BENCH_DEPLOY_ORDER === 'surge',
        sessionTimeoutMs: process.env.BENCH_DEPLOY_SESSION_TIMEOUT_MS
          ? Number(process.env.BENCH_DEPLOY_SESSION_TIMEOUT_MS)
          : undefined,
      };
  const log = (line: string) => options.log(line);
  const tag = Math.random().toString(16).slice(2, 10);
  const prefix = `deploy${tag}.`;
  const groupId = `${prefix}worker`;
  const isOurs = (g: string) => g === groupId || g.startsWith(`${groupId}.`) || g.startsWith(`${groupId}-`);
  const logDir = join(tmpdir(), `pattern-worker-deploy-${tag}`);
  mkdirSync(logDir, { recursive: true });

  const patterns = generatePatterns(SEED, s.patterns);
  const usage = take(usageEvents({ seed: SEED, patterns, skew: 1, days: 30 }), 2000);
  const searches = searchQueries(SEED, 500);

  const db = await createBenchDatabase('deploy', 2);
  const workers: Running[] = [];
  const ended: Running[] = [];
  let spawned = 0;
  let producer: LoadProducer | undefined;
  let reader: ResultReader | undefined;
  const marks: { t: number; label: string }[] = [];
  // Busy share of all CPUs at each mark, for the phases' machine load.
  const cpu: { t: number; busy: number; total: number }[] = [];
  const loadBefore = loadavg();
  const mark = (label: string) => {
    marks.push({ t: Date.now(), label });
    cpu.push({ t: Date.now(), ...cpuTimes() });
    log(`    ${new Date().toISOString().slice(11, 23)} ${label}`);
  };

  const spawnWorker = async (): Promise<Running> => {
    spawned++;
    const name = `w${spawned}`;
    const clientId = `${prefix}${name}`;
    const child = await flavor.start({
      name,
      db,
      topicPrefix: prefix,
      groupId,
      clientId,
      ...(s.sessionTimeoutMs ? { sessionTimeoutMs: s.sessionTimeoutMs } : {}),
    });
    const file = createWriteStream(join(logDir, `${name}.log`));
    const running: Running = { name, clientId, child, log: '', startedAt: Date.now() };
    const keep = (d: Buffer) => {
      running.log += d.toString();
      file.write(d);
    };
    child.child.stdout?.on('data', keep);
    child.child.stderr?.on('data', keep);
    child.child.once('exit', () => file.end());
    return running;
  };

  const brokerLog = new BrokerLog();
  const haveBrokerLog = await brokerLog.start();
  let members: GroupMember[] = [];
  let describeError: string | undefined;
  let describeWindow: { from: number; to: number } | undefined;
  const roll: { replaced: string; by: string; exitedMs: number; readyMs: number; exitCode: number | null }[] =
    [];
  let killed: Running | undefined;
  let loadStart = 0;
  const t = { before: 0, roll: 0, after: 0, kill: 0, end: 0 };
  let produced: { produced: number; maxLagMs: number; undelivered: number } | undefined;
  let drained = false;
  try {
    await loadPatterns(db.pool, patterns);
    await createTopics(prefix);
    reader = new ResultReader(
      BROKERS,
      [`${prefix}pattern.reply`, `${prefix}pattern.usage.result`, `${prefix}pattern.search.result`],
      [`${prefix}pattern.usage.dlq`, `${prefix}pattern.search.request.dlq`],
    );
    await reader.ready();
    log(`  three workers (${flavor.label}), group ${groupId}, topics ${prefix}*, logs in ${logDir}`);
    const first = await Promise.all([0, 1, 2].map(() => spawnWorker()));
    workers.push(...first);
    await Promise.all(first.map((w) => w.child.waitReady(90_000)));
    mark('three workers ready');

    producer = new LoadProducer({
      brokers: BROKERS,
      usageTopic: `${prefix}pattern.usage`,
      searchTopic: `${prefix}pattern.search.request`,
      replyTopic: `${prefix}pattern.reply`,
      usageRate: s.usageRate,
      searchRate: s.searchRate,
      usage: usage.map((e) => ({ pattern_id: e.pattern_id, usage_data: { ...e.usage_data } })),
      searches: searches.map((q) => ({ ...q })),
    });
    loadStart = Date.now();
    log(`  load: ${s.usageRate} usage events/s + ${s.searchRate} searches/s, open loop (librdkafka)`);
    await sleep(s.warmupS * 1000);
    t.before = Date.now();
    mark('phase: before');
    await sleep(s.beforeS * 1000);

    t.roll = Date.now();
    mark('phase: roll');
    for (let i = 0; i < 3; i++) {
      const old = workers.shift() as Running;
      let term = Date.now();
      let exited: Promise<number> | undefined;
      const stopOld = () => {
        term = Date.now();
        mark(`SIGTERM ${old.name}`);
        exited = old.child.stop().then(() => Date.now() - term);
      };
      // Stop first, then start the replacement (the issue's roll); or, as the Helm chart's rolling update
      // does (maxSurge 1, maxUnavailable 0), start the replacement first and stop the old one once it is ready.
      if (!s.surge) stopOld();
      const fresh = await spawnWorker();
      workers.push(fresh);
      await fresh.child.waitReady(120_000);
      const readyMs = Date.now() - term;
      mark(`${fresh.name} ready (replaces ${old.name})`);
      // As a Deployment's minReadySeconds does: the new worker serves a while before an old one stops.
      if (s.surge) {
        if (s.minReadyS > 0) await sleep(s.minReadyS * 1000);
        stopOld();
      }
      const exitedMs = await (exited as Promise<number>);
      if (!s.surge && s.minReadyS > 0) await sleep(s.minReadyS * 1000);
      ended.push(old);
      roll.push({
        replaced: old.name,
        by: fresh.name,
        exitedMs,
        readyMs,
        exitCode: old.child.child.exitCode,
      });
    }
    t.after = Date.now();
    mark('phase: after roll');
    // Who owns what, asked of the broker near the end of the phase, just before the kill.
    await sleep(Math.max(0, s.afterS * 1000 - 6000));
    describeWindow = { from: Date.now(), to: 0 };
    try {
      members = await describeMembers(BROKERS, isOurs);
    } catch (err) {
      describeError = err instanceof Error ? err.message.slice(0, 500) : String(err);
      log(`    describing the group failed: ${describeError}`);
    }
    describeWindow.to = Date.now();
    await sleep(Math.max(0, t.after + s.afterS * 1000 - Date.now()));

    const victim = workers.shift();
    if (!victim) throw new Error('no worker left to kill');
    killed = victim;
    t.kill = Date.now();
    victim.child.child.kill('SIGKILL');
    mark(`phase: after SIGKILL (${victim.name} killed)`);
    await sleep(s.afterKillS * 1000);
    t.end = Date.now();
    mark('load stops');
    produced = await producer.stop();

    // Drain: every acknowledged request answered, or the drain time is up.
    const deadline = Date.now() + s.drainS * 1000;
    for (;;) {
      const answered = new Set(reader.results.map((r) => r.id));
      const open = producer.requests.filter((r) => !r.err && !answered.has(r.id)).length;
      if (open === 0) {
        drained = true;
        break;
      }
      if (Date.now() > deadline) break;
      await sleep(250);
    }
    mark(drained ? 'drained' : `drain timed out after ${s.drainS} s`);
    await Promise.all(workers.map((w) => w.child.stop()));
    ended.push(...workers.splice(0), victim);
    // Results published while the workers stopped (re-sent ones) still count.
    await sleep(1000);
    await reader.stop();
  } catch (err) {
    await db.drop().catch(() => undefined);
    await deleteTopics(prefix);
    throw err;
  } finally {
    producer?.kill();
    reader?.kill();
    await Promise.all(workers.map((w) => w.child.stop()));
  }
  if (!producer || !reader || !produced) throw new Error('the load never started');

  // ---- Figures ----
  const requests = producer.requests;
  const sent = requests.filter((r) => !r.err);
  const firstResult = new Map<string, number>();
  const resultCount = new Map<string, number>();
  for (const r of reader.results) {
    if (r.id === null) continue;
    resultCount.set(r.id, (resultCount.get(r.id) ?? 0) + 1);
    const before = firstResult.get(r.id);
    if (before === undefined || r.rcv < before) firstResult.set(r.id, r.rcv);
  }
  // Every request beside the workers' logs, for reading a stall against their assignment changes.
  writeFileSync(
    join(logDir, 'requests.jsonl'),
    sent
      .map((r) => {
        const topic = r.op === 'u' ? 'pattern.usage' : 'pattern.search.request';
        return JSON.stringify({
          topic,
          partition: r.partition,
          due: r.due,
          answeredAt: firstResult.get(r.id) ?? null,
        });
      })
      .join('\n'),
  );
  const failedResults = reader.results.filter((r) => !r.ok);
  const failureCodes: Record<string, number> = {};
  for (const r of failedResults) failureCodes[r.code ?? 'none'] = (failureCodes[r.code ?? 'none'] ?? 0) + 1;
  const lost = sent.filter((r) => !firstResult.has(r.id));
  const duplicates = [...resultCount.values()].filter((n) => n > 1).length;
  // Searches have no effect to deduplicate: a redelivered one runs again, unflagged.
  const opOf = new Map(requests.map((r) => [r.id, r.op]));
  const duplicateSearches = [...resultCount].filter(([id, n]) => n > 1 && opOf.get(id) === 's').length;
  const flaggedDuplicates = reader.results.filter((r) => r.dup).length;

  // Effects, counted in the database per request identity (file_path = deploy/<correlation id>).
  const { rows: doubledRows } = await db.pool.query<{ n: string }>(
    `SELECT count(*) AS n FROM (SELECT file_path FROM pattern_usage_events WHERE file_path LIKE 'deploy/%'
       GROUP BY file_path HAVING count(*) > 1) d`,
  );
  const { rows: totals } = await db.pool.query<{ events: string; usage: string }>(
    `SELECT (SELECT count(*) FROM pattern_usage_events) AS events,
            (SELECT coalesce(sum(usage_count), 0) FROM pattern_templates) AS usage`,
  );
  const applied = new Set(
    (
      await db.pool.query<{ f: string }>(
        `SELECT substr(file_path, 8) AS f FROM pattern_usage_events WHERE file_path LIKE 'deploy/%'`,
      )
    ).rows.map((r) => r.f),
  );
  await db.drop();
  await deleteTopics(prefix);
  const doubled = Number(doubledRows[0]?.n ?? 0);
  const usageRows = Number(totals[0]?.events ?? 0);
  const usageCountSum = Number(totals[0]?.usage ?? 0);
  const sentUsage = sent.filter((r) => r.op === 'u');
  const lostButApplied = lost.filter((r) => r.op === 'u' && applied.has(r.id)).length;
  const appliedWithoutAck = [...applied].filter((id) => !sentUsage.some((r) => r.id === id)).length;

  // Phases by due time.
  const bounds: Record<PhaseName, [number, number]> = {
    before: [t.before, t.roll],
    roll: [t.roll, t.after],
    'after roll': [t.after, t.kill],
    'after SIGKILL': [t.kill, t.end],
  };
  const phaseAt = (x: number): string =>
    x < t.before ? 'warm-up' : (PHASES.find((p) => x >= bounds[p][0] && x < bounds[p][1]) ?? 'after');

  // Stalls per request partition ("topic/partition"); requests land at the broker's append time.
  const topicOf = (r: SentRequest) => (r.op === 'u' ? 'pattern.usage' : 'pattern.search.request');
  const byPartition = new Map<string, SentRequest[]>();
  for (const r of sent) {
    const key = `${topicOf(r)}/${r.partition}`;
    byPartition.set(key, [...(byPartition.get(key) ?? []), r]);
  }
  const stalls = new Map<string, Interval[]>();
  for (const [key, rs] of byPartition) {
    stalls.set(
      key,
      stallIntervals(
        rs.map((r) => ({
          at: Number.isFinite(r.ts) ? r.ts : r.ack,
          answeredAt: firstResult.get(r.id) ?? null,
        })),
        Date.now(),
      ),
    );
  }
  const longest = (keys: string[], [from, to]: [number, number]) => {
    let best = { ms: 0, partition: null as string | null };
    for (const k of keys) {
      const ms = longestWithin(stalls.get(k) ?? [], from, to);
      if (ms > best.ms) best = { ms, partition: k };
    }
    return best;
  };
  const allPartitions = [...byPartition.keys()].sort();

  // Rebalances, from the broker's log.
  let groupEvents: GroupEvent[] = [];
  if (haveBrokerLog) groupEvents = parseGroupEvents(await brokerLog.text(), isOurs);
  const rebalancesIn = (from: number, to: number) => {
    const inside = groupEvents.filter((e) => e.t >= from && e.t < to);
    return {
      completed: inside.filter((e) => e.kind === 'stabilized').length,
      started: inside.filter((e) => e.kind === 'prepare').length,
      epochBumps: inside.filter((e) => e.kind === 'epoch').length,
    };
  };

  const busyBetween = (from: number, to: number) => {
    const a = cpu.find((c) => c.t >= from - 50);
    const b = [...cpu].reverse().find((c) => c.t <= to + 50);
    if (!a || !b || b.total <= a.total) return NaN;
    return Math.round((1000 * (b.busy - a.busy)) / (b.total - a.total)) / 10;
  };
  const resultTopics: Record<string, number> = {};
  for (const r of reader.results) {
    const k = r.topic.slice(prefix.length);
    resultTopics[k] = (resultTopics[k] ?? 0) + 1;
  }
  const phases = {} as Record<PhaseName, PhaseFigures>;
  for (const p of PHASES) {
    const [from, to] = bounds[p];
    const inPhase = sent.filter((r) => r.due >= from && r.due < to);
    const latencies = inPhase.flatMap((r) => {
      const at = firstResult.get(r.id);
      return at === undefined ? [] : [at - r.due];
    });
    const stall = longest(allPartitions, bounds[p]);
    phases[p] = {
      seconds: Math.round((to - from) / 100) / 10,
      requests: inPhase.length,
      answered: latencies.length,
      latencyMs: summarize(latencies),
      over1sPercent:
        Math.round(
          (1000 * (inPhase.length - latencies.filter((ms) => ms <= 1000).length)) /
            Math.max(1, inPhase.length),
        ) / 10,
      longestStallMs: Math.round(stall.ms),
      longestStallPartition: stall.partition,
      rebalances: rebalancesIn(from, to),
      machineBusyPercent: busyBetween(from, to),
      flaggedDuplicates: reader.results.filter((r) => r.dup && r.rcv >= from && r.rcv < to).length,
    };
  }

  // After the SIGKILL: the killed worker's partitions (as the broker assigned them just before) vs the rest.
  const owner = new Map<string, string>();
  for (const m of members) {
    const proc = [...ended, ...workers].find(
      (w) =>
        m.clientId === w.clientId ||
        m.clientId.startsWith(`${w.clientId}-`) ||
        m.clientId.startsWith(`${w.clientId}.`),
    );
    for (const p of m.partitions) {
      const logical = p.topic.startsWith(prefix) ? p.topic.slice(prefix.length) : p.topic;
      owner.set(`${logical}/${p.partition}`, proc?.name ?? `unknown (${m.clientId})`);
    }
  }
  const killedName = killed?.name ?? '';
  const killedParts = allPartitions.filter((k) => owner.get(k) === killedName);
  const survivorParts = allPartitions.filter((k) => owner.has(k) && owner.get(k) !== killedName);
  const unowned = allPartitions.filter((k) => !owner.has(k));
  const afterKill = bounds['after SIGKILL'];
  const survivorStall =
    survivorParts.length > 0 ? longest(survivorParts, afterKill) : { ms: NaN, partition: null };
  const killedStall = killedParts.length > 0 ? longest(killedParts, afterKill) : { ms: NaN, partition: null };
  const rebalancedDuringDescribe =
    describeWindow !== undefined &&
    groupEvents.some((e) => e.t >= (describeWindow?.from ?? 0) && e.t < t.kill);

  // Consumer crashes and restarts, from every worker's log.
  const procs = [...ended, ...workers];
  const crashes: Record<string, number> = {};
  const crashSamples: string[] = [];
  for (const [name, re] of Object.entries(flavor.crashLines)) {
    crashes[name] = 0;
    for (const w of procs) {
      for (const line of w.log.split('\n')) {
        if (!re.test(line)) continue;
        crashes[name] = (crashes[name] ?? 0) + 1;
        if (crashSamples.length < 6) crashSamples.push(`${w.name}: ${line.slice(0, 400)}`);
      }
    }
  }
  const consumerCrashes = crashes['consumer crashed'] ?? Object.values(crashes).reduce((a, b) => a + b, 0);
  const levelCounts: Record<string, number> = {};
  for (const w of procs) {
    for (const line of w.log.split('\n')) {
      const m = /"level":(40|50|60).*?"msg":"([^"]{0,120})/.exec(line);
      if (m)
        levelCounts[`${m[1] === '40' ? 'warn' : m[1] === '50' ? 'error' : 'fatal'}: ${m[2]}`] =
          (levelCounts[`${m[1] === '40' ? 'warn' : m[1] === '50' ? 'error' : 'fatal'}: ${m[2]}`] ?? 0) + 1;
    }
  }

  // The timeline.
  const latencyByDue = sent
    .filter((r) => r.due >= loadStart)
    .map((r) => {
      const at = firstResult.get(r.id);
      return { due: r.due, ms: at === undefined ? null : at - r.due };
    });
  const rows = windowRows(
    latencyByDue,
    t.before,
    t.end,
    s.windowS * 1000,
    phaseAt,
    marks.filter((m) => !m.label.startsWith('phase:')),
  );
  const timeline = asciiTimeline(rows);

  const steadyP99 = phases.before.latencyMs.p99;
  const rollP99 = phases.roll.latencyMs.p99;
  const rollRatio = rollP99 / steadyP99;
  const rollRebalances = phases.roll.rebalances;
  const goals = [
    goal(
      'deploy: p99 during the roll vs steady p99',
      '<= 2x',
      rollRatio,
      'x',
      rollRatio <= 2,
      `${fmt(rollP99, 0)} ms vs ${fmt(steadyP99, 0)} ms`,
    ),
    goal(
      "deploy: longest stall of the surviving workers' partitions after SIGKILL",
      '<= 1000 ms',
      survivorStall.ms,
      'ms',
      Number.isFinite(survivorStall.ms) ? survivorStall.ms <= 1000 : false,
      Number.isFinite(survivorStall.ms)
        ? `${survivorParts.length} partitions; the killed worker's ${killedParts.length}: ${fmt(killedStall.ms, 0)} ms`
        : `ownership unknown${describeError ? `: ${describeError.slice(0, 120)}` : ''}`,
    ),
    goal(
      'deploy: lost requests',
      '= 0',
      lost.length,
      'requests',
      lost.length === 0,
      drained ? undefined : 'drain timed out',
    ),
    goal('deploy: doubled effects', '= 0', doubled, 'requests', doubled === 0),
    goal('deploy: consumer crashes', '= 0', consumerCrashes, 'crashes', consumerCrashes === 0),
    goal(
      'deploy: rebalances during the roll (broker)',
      'report',
      rollRebalances.completed + rollRebalances.epochBumps,
      'rebalances',
      null,
      haveBrokerLog ? `${rollRebalances.started} started` : `no broker log at ${brokerLog.path}`,
    ),
    goal('deploy: duplicate results', 'report', duplicates, 'requests', null),
  ];

  const line = (p: PhaseName) => {
    const f = phases[p];
    const r = f.rebalances;
    return `${p.padEnd(14)} ${String(f.requests).padStart(5)} req  p50 ${fmt(f.latencyMs.p50, 0).padStart(6)}  p99 ${fmt(f.latencyMs.p99, 0).padStart(6)}  max ${fmt(f.latencyMs.max, 0).padStart(6)} ms  >1s ${f.over1sPercent.toFixed(1).padStart(5)}%  longest stall ${fmt(f.longestStallMs, 0).padStart(6)} ms (${f.longestStallPartition ?? '-'})  rebalances ${r.completed + r.epochBumps} (${r.started} started)  CPUs ${fmt(f.machineBusyPercent, 0)}% busy  duplicates ${f.flaggedDuplicates}`;
  };
  const summary = [
    `worker: ${flavor.label}; 3 workers, group ${groupId}; ${s.usageRate} usage/s + ${s.searchRate} searches/s open loop (librdkafka), generator late by at most ${fmt(produced.maxLagMs, 0)} ms`,
    ...PHASES.map(line),
    `roll: ${roll.map((r) => `${r.replaced} -> ${r.by} ready after ${fmt(r.readyMs / 1000, 1)} s (old exited after ${fmt(r.exitedMs / 1000, 1)} s, code ${r.exitCode})`).join('; ')}`,
    `after SIGKILL of ${killedName}: its ${killedParts.length} partitions stalled up to ${fmt(killedStall.ms, 0)} ms, the survivors' ${survivorParts.length} up to ${fmt(survivorStall.ms, 0)} ms${unowned.length > 0 ? `; ${unowned.length} partitions without an owner in the describe` : ''}${rebalancedDuringDescribe ? ' (the group rebalanced between the describe and the kill: ownership may be stale)' : ''}`,
    `sent ${sent.length} (${requests.length - sent.length} not acknowledged by the broker), lost ${lost.length} (${lostButApplied} of them applied), doubled ${doubled}, duplicate results ${duplicates} (${duplicateSearches} of them searches; ${flaggedDuplicates} results flagged duplicate), failed results ${failedResults.length}${failedResults.length > 0 ? ` ${JSON.stringify(failureCodes)}` : ''}, dead letters ${reader.deadLetters.length}`,
    `database: ${usageRows} usage rows for ${sentUsage.length} usage requests, usage_count sum ${usageCountSum}${appliedWithoutAck > 0 ? `, ${appliedWithoutAck} rows of unacknowledged requests` : ''}`,
    `consumer crashes/restarts in the workers' logs: ${JSON.stringify(crashes)}`,
    `p99 per ${s.windowS} s window (by due time):`,
    ...timeline,
  ];

  return {
    scenario: 'deploy',
    smoke: options.smoke,
    startedAt: new Date(started).toISOString(),
    durationS: Math.round((Date.now() - started) / 100) / 10,
    params: {
      ...s,
      worker: flavor.label,
      workerScript: process.env.BENCH_DEPLOY_WORKER_SCRIPT || 'dist/bundle/patterns.js',
      workerEnv: process.env.BENCH_DEPLOY_WORKER_ENV || '',
      sessionTimeoutMs: s.sessionTimeoutMs ?? 'worker default',
      partitions: PARTITIONS,
      seed: SEED,
      groupId,
      logDir,
    },
    figures: {
      phases,
      roll,
      kill: {
        worker: killedName,
        killedPartitions: killedParts,
        survivorPartitions: survivorParts,
        unownedPartitions: unowned,
        killedLongestStallMs: Math.round(killedStall.ms),
        survivorLongestStallMs: Math.round(survivorStall.ms),
        survivorLongestStallPartition: survivorStall.partition,
        members: members.map((m) => ({
          group: m.group,
          clientId: m.clientId,
          partitions: m.partitions.map((p) => `${p.topic.slice(prefix.length)}/${p.partition}`),
        })),
        describeError: describeError ?? null,
        rebalancedBetweenDescribeAndKill: rebalancedDuringDescribe,
      },
      stallsPerPartition: Object.fromEntries(
        allPartitions.map((k) => [
          k,
          Object.fromEntries(
            PHASES.map((p) => [p, Math.round(longestWithin(stalls.get(k) ?? [], ...bounds[p]))]),
          ),
        ]),
      ),
      requests: {
        sent: sent.length,
        notAcknowledged: requests.length - sent.length,
        usage: sentUsage.length,
        searches: sent.length - sentUsage.length,
        generatorMaxLagMs: produced.maxLagMs,
        drained,
      },
      lost: lost.length,
      lostButApplied,
      lostIds: lost
        .slice(0, 20)
        .map((r) => ({ id: r.id, op: r.op, partition: r.partition, offset: r.offset })),
      doubled,
      duplicateResults: duplicates,
      duplicateResultsOfSearches: duplicateSearches,
      flaggedDuplicateResults: flaggedDuplicates,
      resultTopics,
      machine: { loadAverageBefore: loadBefore, loadAverageAfter: loadavg() },
      failedResults: failedResults.length,
      failureCodes,
      deadLetters: reader.deadLetters.length,
      readerErrors: reader.errors.slice(0, 5),
      database: { usageRows, usageCountSum, usageRequests: sentUsage.length, appliedWithoutAck },
      consumerCrashes: crashes,
      crashSamples,
      workerLogLevels: levelCounts,
      rebalanceEvents: groupEvents.map((e) => ({
        ...e,
        at: Math.round((e.t - t.before) / 100) / 10,
        phase: phaseAt(e.t),
      })),
      windows: rows,
      // Seconds from the start of phase "before", as in the timeline (the warm-up is negative).
      marks: marks.map((m) => ({ at: Math.round((m.t - t.before) / 100) / 10, label: m.label })),
    },
    goals,
    summary,
  };
}

export function deploy(options: ScenarioOptions): Promise<ScenarioResult> {
  return runDeploy(options, defaultFlavor);
}
