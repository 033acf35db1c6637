// Rolling restart and SIGKILL of echo processes, one client at a time (issue 25's candidates, side by side).
// Three echo processes of one kind in one group over a 12-partition request topic; an independent open-loop
// producer (librdkafka via python3-confluent-kafka) at ~100 msg/s, each record carrying its send time and
// going to partition seq % 12; an independent reader of the replies (librdkafka). Phases: steady, a rolling
// restart (SIGTERM one, start its replacement, wait until it is ready, 5 s, next), after the roll, then one
// SIGKILL and 60 s (the KIP-848 broker default session timeout is 45 s), then the producer stops and the
// replies drain. Per phase (by send time): p50/p99/max request -> reply latency; the longest gap between two
// replies of one request partition (stall) and how many partitions had a gap over 1 s; lost, duplicated.
//   node bench/candidates/roll.ts [kafkajs] [platformatic]      (default: both, kafkajs first)
//   ROLL_MODE=surge node bench/candidates/roll.ts ...            (start the replacement first, then SIGTERM)
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { BROKERS, benchKafka } from '../lib/kafka.ts';
import { percentile } from '../lib/stats.ts';

const PYTHON = '/usr/bin/python3';
const PARTITIONS = 12;
const RATE = 100;
const STEADY_MS = 20_000;
const SETTLE_MS = 5_000;
const AFTER_ROLL_MS = 15_000;
const AFTER_KILL_MS = 60_000;
const HERE = import.meta.dirname;
/** ROLL_MODE=surge: each replacement starts, and is ready, before the old process gets its SIGTERM. */
const SURGE = process.env.ROLL_MODE === 'surge';

const PRODUCER_PY = `
import json, signal, sys, time
from confluent_kafka import Producer
brokers, topic, rate, parts = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
stop = False
def on_term(*_):
    global stop
    stop = True
signal.signal(signal.SIGTERM, on_term)
p = Producer({'bootstrap.servers': brokers, 'enable.idempotence': True, 'acks': 'all', 'linger.ms': 1})
failed = []
def cb(err, msg):
    if err is not None:
        failed.append(int(msg.key()))
print('started', flush=True)
t0 = time.time()
i = 0
while not stop:
    now = time.time()
    due = t0 + i / rate
    if due > now:
        p.poll(min(due - now, 0.01))
        continue
    part = i % parts
    v = json.dumps({'seq': i, 'sent': now * 1000.0, 'p': part})
    p.produce(topic, value=v, key=str(i), partition=part, headers=[('kafka_correlationId', str(i))], on_delivery=cb)
    p.poll(0)
    i += 1
p.flush(30)
print(json.dumps({'sent': i, 'failed': failed}), flush=True)
`;

const READER_PY = `
import json, signal, sys, time
from confluent_kafka import Consumer, TopicPartition, OFFSET_BEGINNING
brokers, topic, parts = sys.argv[1], sys.argv[2], int(sys.argv[3])
stop = False
def on_term(*_):
    global stop
    stop = True
signal.signal(signal.SIGTERM, on_term)
c = Consumer({'bootstrap.servers': brokers, 'group.id': 'cand.reader', 'enable.auto.commit': False,
              'fetch.wait.max.ms': 10, 'fetch.min.bytes': 1})
c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(parts)])
print('ready', flush=True)
while not stop:
    msgs = c.consume(num_messages=1000, timeout=0.05)
    now = time.time() * 1000.0
    out = []
    for m in msgs:
        if m.error():
            continue
        v = json.loads(m.value())
        out.append('%d %d %.1f %.1f' % (v['seq'], v['p'], v['sent'], now))
    if out:
        sys.stdout.write('\\n'.join(out) + '\\n')
        sys.stdout.flush()
c.close()
`;

type Kind = 'kafkajs' | 'platformatic';
interface Reply {
  seq: number;
  partition: number;
  sent: number;
  recv: number;
}
interface Phase {
  name: string;
  from: number;
  to: number;
}
interface PhaseFigures {
  phase: string;
  seconds: number;
  requests: number;
  p50: number;
  p99: number;
  max: number;
  over1s: number;
  stallMax: number;
  partitionsStalledOver1s: number;
  /** The longest stall of partitions the SIGKILLed member did not own when it died. */
  othersStallMax: number;
}
interface RunResult {
  kind: Kind;
  mode: 'stop-then-start' | 'surge';
  broker: string;
  kafkajsSessionTimeoutMs: number;
  started: string;
  uptimeBefore: string;
  uptimeAfter: string;
  busiest: string;
  sent: number;
  failedSends: number;
  replies: number;
  lost: number;
  duplicated: number;
  phases: PhaseFigures[];
  rollSteps: { step: number; stopMs: number; readyMs: number }[];
  victimPartitions: number[];
  assignmentChanges: number;
  crashes: number;
  errorLines: string[];
}

/** Every process this run started, killed if the run dies. */
const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});
const track = (c: ChildProcess) => {
  children.add(c);
  c.once('exit', () => children.delete(c));
  return c;
};

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const sh = (cmd: string, args: string[]) => {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8' }).trim();
  } catch {
    return '';
  }
};

interface Echo {
  name: string;
  child: ChildProcess;
  ready: Promise<void>;
  exited: Promise<number | null>;
  log: string;
}

function startEcho(kind: Kind, name: string, dir: string, env: Record<string, string>): Echo {
  const log = `${dir}/${name}.log`;
  const child = track(
    spawn(
      process.execPath,
      [
        '--disable-warning=ExperimentalWarning',
        '--disable-warning=TimeoutNegativeWarning',
        `${HERE}/echo-${kind}.ts`,
      ],
      { env: { ...process.env, ...env, ECHO_NAME: name }, stdio: ['ignore', 'pipe', openSync(log, 'a')] },
    ),
  );
  const { promise: ready, resolve, reject } = Promise.withResolvers<void>();
  const timer = setTimeout(() => reject(new Error(`${name} not ready in 90 s`)), 90_000);
  createInterface({ input: child.stdout! }).on('line', (line) => {
    if (line === 'ready') {
      clearTimeout(timer);
      resolve();
    }
  });
  const exited = new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
  void exited.then(() => {
    clearTimeout(timer);
    reject(new Error(`${name} exited`));
  });
  ready.catch(() => undefined);
  return { name, child, ready, exited, log };
}

async function runOnce(kind: Kind): Promise<RunResult> {
  const id = `cand.${randomBytes(3).toString('hex')}.${kind}`;
  const requestTopic = `${id}.req`;
  const replyTopic = `${id}.reply`;
  const dir = `/tmp/cand-roll/${id}`;
  mkdirSync(dir, { recursive: true });
  const kafka = benchKafka('cand-roll');
  const admin = kafka.admin();
  await admin.connect();
  try {
    await admin.createTopics({
      waitForLeaders: true,
      topics: [requestTopic, replyTopic].map((topic) => ({
        topic,
        numPartitions: PARTITIONS,
        replicationFactor: 1,
      })),
    });
  } catch (err) {
    // kafkajs's wait for leaders can fail with UNKNOWN_TOPIC_OR_PARTITION on a young broker: wait ourselves.
    console.log(
      `[${kind}] createTopics: ${err instanceof Error ? err.message : String(err)}; waiting for the topics`,
    );
    for (let i = 0; ; i++) {
      const ok = await admin
        .fetchTopicMetadata({ topics: [requestTopic, replyTopic] })
        .then((m) =>
          m.topics.every(
            (t) => t.partitions.length === PARTITIONS && t.partitions.every((p) => p.leader >= 0),
          ),
        )
        .catch(() => false);
      if (ok) break;
      if (i > 60) throw err;
      await sleep(500);
    }
  }
  const uptimeBefore = sh('uptime', []);
  const busiest = sh('ps', ['-eo', 'pcpu,etime,args', '--sort=-pcpu'])
    .split('\n')
    .slice(1, 6)
    .map((l) => l.trim().slice(0, 90))
    .join(' | ');
  const started = new Date().toISOString();
  const t = () => Date.now();
  console.log(`[${kind}] ${id}: ${uptimeBefore}`);

  // The reader of the replies.
  const replies: Reply[] = [];
  const reader = track(
    spawn(PYTHON, ['-c', READER_PY, BROKERS.join(','), replyTopic, String(PARTITIONS)], {
      stdio: ['ignore', 'pipe', openSync(`${dir}/reader.log`, 'a')],
    }),
  );
  const readerReady = Promise.withResolvers<void>();
  createInterface({ input: reader.stdout! }).on('line', (line) => {
    if (line === 'ready') return readerReady.resolve();
    const [seq, partition, sent, recv] = line.split(' ').map(Number);
    if (seq !== undefined && partition !== undefined && sent !== undefined && recv !== undefined) {
      replies.push({ seq, partition, sent, recv });
    }
  });
  await readerReady.promise;

  const env = { REQUEST_TOPIC: requestTopic, REPLY_TOPIC: replyTopic, KAFKA_GROUP_ID: `${id}.group` };
  let n = 0;
  const echoes: Echo[] = [];
  for (let i = 0; i < 3; i++) echoes.push(startEcho(kind, `${kind}-${n++}`, dir, env));
  await Promise.all(echoes.map((e) => e.ready));
  await sleep(SETTLE_MS);
  console.log(`[${kind}] three echoes ready`);

  // The open-loop producer.
  const producer = track(
    spawn(PYTHON, ['-c', PRODUCER_PY, BROKERS.join(','), requestTopic, String(RATE), String(PARTITIONS)], {
      stdio: ['ignore', 'pipe', openSync(`${dir}/producer.log`, 'a')],
    }),
  );
  const producerLines: string[] = [];
  const producerStarted = Promise.withResolvers<void>();
  createInterface({ input: producer.stdout! }).on('line', (line) => {
    if (line === 'started') producerStarted.resolve();
    else producerLines.push(line);
  });
  const producerExit = new Promise<void>((res) => producer.once('exit', () => res()));
  await producerStarted.promise;
  const phases: Phase[] = [];
  const steadyFrom = t() + 2_000;
  await sleep(STEADY_MS);
  const rollFrom = t();
  phases.push({ name: 'steady', from: steadyFrom, to: rollFrom });

  const rollSteps: RunResult['rollSteps'] = [];
  for (let step = 0; step < 3; step++) {
    const old = echoes[step]!;
    const t0 = t();
    let stopMs: number;
    let readyMs: number;
    const replacement = SURGE ? startEcho(kind, `${kind}-${n++}`, dir, env) : undefined;
    if (replacement) {
      // Surge: the replacement is ready before the old one is stopped.
      echoes[step] = replacement;
      await replacement.ready;
      readyMs = t() - t0;
      const t1 = t();
      old.child.kill('SIGTERM');
      await old.exited;
      stopMs = t() - t1;
    } else {
      old.child.kill('SIGTERM');
      const next = startEcho(kind, `${kind}-${n++}`, dir, env);
      echoes[step] = next;
      await old.exited;
      stopMs = t() - t0;
      await next.ready;
      readyMs = t() - t0;
    }
    rollSteps.push({ step, stopMs, readyMs });
    console.log(
      `[${kind}] roll step ${step}: old stopped in ${stopMs} ms, replacement ready in ${readyMs} ms`,
    );
    await sleep(SETTLE_MS);
  }
  const rollTo = t();
  phases.push({ name: 'roll', from: rollFrom, to: rollTo });
  await sleep(AFTER_ROLL_MS);
  const killAt = t();
  phases.push({ name: 'after roll', from: rollTo, to: killAt });
  const victim = echoes[1]!;
  victim.child.kill('SIGKILL');
  console.log(`[${kind}] SIGKILL ${victim.name}`);
  await sleep(AFTER_KILL_MS);
  const end = t();
  phases.push({ name: 'SIGKILL +60 s', from: killAt, to: end });

  producer.kill('SIGTERM');
  await producerExit;
  const summary = JSON.parse(producerLines.at(-1) ?? '{"sent":0,"failed":[]}') as {
    sent: number;
    failed: number[];
  };
  // Drain: until no reply came for 5 s (at most 60 s).
  const drainUntil = t() + 60_000;
  let last = replies.length;
  let quietSince = t();
  while (t() < drainUntil && t() - quietSince < 5_000) {
    await sleep(250);
    if (replies.length !== last) {
      last = replies.length;
      quietSince = t();
    }
  }
  for (const e of echoes) if (e !== victim) e.child.kill('SIGTERM');
  await Promise.all(echoes.filter((e) => e !== victim).map((e) => e.exited));
  reader.kill('SIGTERM');
  const uptimeAfter = sh('uptime', []);

  // The partitions the SIGKILLed member owned when it died: the last assignment it logged.
  const victimPartitions = new Set<number>();
  const victimLog = readFileSync(victim.log, 'utf8').split('\n');
  for (const line of victimLog.toReversed()) {
    const plt = / assignment (\{.*\})$/.exec(line);
    const kjs = / joined (\{.*\})$/.exec(line);
    if (plt?.[1]) {
      for (const p of (JSON.parse(plt[1]) as { now: number[] }).now) victimPartitions.add(p);
      break;
    }
    if (kjs?.[1]) {
      const a = (JSON.parse(kjs[1]) as { assignment: Record<string, number[]> }).assignment;
      for (const p of Object.values(a).flat()) victimPartitions.add(p);
      break;
    }
  }

  // Figures.
  const failed = new Set(summary.failed);
  const first = new Map<number, Reply>();
  let duplicated = 0;
  for (const r of replies) {
    if (first.has(r.seq)) duplicated += 1;
    else first.set(r.seq, r);
  }
  let lost = 0;
  for (let seq = 0; seq < summary.sent; seq++) if (!failed.has(seq) && !first.has(seq)) lost += 1;
  const byPartition = new Map<number, number[]>();
  for (const r of replies) byPartition.set(r.partition, [...(byPartition.get(r.partition) ?? []), r.recv]);
  for (const times of byPartition.values()) times.sort((a, b) => a - b);
  const figures = phases.map((ph): PhaseFigures => {
    const lat = [...first.values()]
      .filter((r) => r.sent >= ph.from && r.sent < ph.to)
      .map((r) => r.recv - r.sent)
      .sort((a, b) => a - b);
    let stallMax = 0;
    let stalled = 0;
    let survivorsStallMax = 0;
    for (const [partition, times] of byPartition) {
      let worst = 0;
      // A gap between two replies counts in a phase for the part of it inside the phase.
      for (let i = 1; i < times.length; i++) {
        const a = Math.max(times[i - 1]!, ph.from);
        const b = Math.min(times[i]!, ph.to);
        if (b > a) worst = Math.max(worst, b - a);
      }
      stallMax = Math.max(stallMax, worst);
      if (worst > 1_000) stalled += 1;
      if (!victimPartitions.has(partition)) survivorsStallMax = Math.max(survivorsStallMax, worst);
    }
    return {
      phase: ph.name,
      seconds: Math.round((ph.to - ph.from) / 1000),
      requests: lat.length,
      p50: percentile(lat, 50),
      p99: percentile(lat, 99),
      max: lat.at(-1) ?? 0,
      over1s: lat.filter((x) => x > 1_000).length,
      stallMax,
      partitionsStalledOver1s: stalled,
      othersStallMax: survivorsStallMax,
    };
  });
  // What the members logged.
  let assignmentChanges = 0;
  let crashes = 0;
  const errorLines: string[] = [];
  for (let i = 0; i < n; i++) {
    let text: string;
    try {
      text = readFileSync(`${dir}/${kind}-${i}.log`, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n')) {
      if (/ (assignment|joined|rebalancing)\b/.test(line)) assignmentChanges += 1;
      if (/crashed/.test(line)) crashes += 1;
      if (/error|crash|fail/i.test(line) && errorLines.length < 20) errorLines.push(line.slice(0, 300));
    }
  }
  await admin.deleteTopics({ topics: [requestTopic, replyTopic] }).catch(() => undefined);
  await admin.disconnect();
  return {
    kind,
    mode: SURGE ? 'surge' : 'stop-then-start',
    broker: BROKERS.join(','),
    kafkajsSessionTimeoutMs: Number(process.env.ECHO_SESSION_TIMEOUT_MS ?? 30_000),
    started,
    uptimeBefore,
    uptimeAfter,
    busiest,
    sent: summary.sent,
    failedSends: failed.size,
    replies: replies.length,
    lost,
    duplicated,
    phases: figures,
    rollSteps,
    victimPartitions: [...victimPartitions].sort((x, y) => x - y),
    assignmentChanges,
    crashes,
    errorLines,
  };
}

function table(results: RunResult[]): string {
  const ms = (x: number) => (x >= 10_000 ? `${(x / 1000).toFixed(1)} s` : `${Math.round(x)} ms`);
  const lines = [
    `| phase | client | requests | p50 | p99 | max | > 1 s | longest partition stall | partitions stalled > 1 s | longest stall, partitions the killed member did not own |`,
    `|---|---|---|---|---|---|---|---|---|---|`,
  ];
  const names = results[0]?.phases.map((p) => p.phase) ?? [];
  for (const name of names) {
    for (const r of results) {
      const f = r.phases.find((p) => p.phase === name);
      if (!f) continue;
      lines.push(
        `| ${name} (${f.seconds} s) | ${r.kind} | ${f.requests} | ${ms(f.p50)} | ${ms(f.p99)} | ${ms(f.max)} | ${f.over1s} | ${ms(f.stallMax)} | ${f.partitionsStalledOver1s} / ${PARTITIONS} | ${ms(f.othersStallMax)} |`,
      );
    }
  }
  lines.push('');
  for (const r of results) {
    lines.push(
      `- ${r.kind}: sent ${r.sent} (${r.failedSends} failed sends), replies ${r.replies}, lost ${r.lost}, duplicated ${r.duplicated}; ` +
        `roll steps (stop ms / ready ms): ${r.rollSteps.map((s) => `${s.stopMs}/${s.readyMs}`).join(', ')}; ` +
        `killed member owned ${r.victimPartitions.join(',')}; ` +
        `membership log lines ${r.assignmentChanges}, consumer crashes ${r.crashes}; before: ${r.uptimeBefore}; after: ${r.uptimeAfter}`,
    );
  }
  return lines.join('\n');
}

const kinds = (
  process.argv.slice(2).length > 0 ? process.argv.slice(2) : ['kafkajs', 'platformatic']
) as Kind[];
const results: RunResult[] = [];
for (const kind of kinds) {
  if (kind !== 'kafkajs' && kind !== 'platformatic') throw new Error(`unknown kind ${String(kind)}`);
  results.push(await runOnce(kind));
  // Written after each client, so a failure of the next one keeps these.
  writeFileSync(`/tmp/cand-roll/partial-${process.pid}.json`, `${JSON.stringify(results, null, 2)}\n`);
}
mkdirSync(`${HERE}/results`, { recursive: true });
const out = `${HERE}/results/roll-${SURGE ? 'surge-' : ''}${results[0]?.started.slice(0, 16).replace(':', '-') ?? 'none'}.json`;
writeFileSync(out, `${JSON.stringify(results, null, 2)}\n`);
console.log(table(results));
for (const r of results) {
  if (r.errorLines.length > 0) console.log(`\n${r.kind} error lines:\n${r.errorLines.join('\n')}`);
  console.log(`\n${r.kind} busiest processes at start: ${r.busiest}`);
}
console.log(`\nwritten ${out}`);
process.exit(0);
