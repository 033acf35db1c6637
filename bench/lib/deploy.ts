// Instruments of the deploy scenario, none of them the worker's Kafka client: the open-loop producer and
// the result reader (librdkafka through Debian's python3-confluent-kafka), the broker's own log (rebalances)
// and Kafka's own ConsumerGroupCommand (who owns which partition), plus the stall and window arithmetic.
import { spawn, type ChildProcess } from 'node:child_process';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { percentile } from './stats.ts';

const PYTHON = '/usr/bin/python3';
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** A request as the broker acknowledged it to the producer (times in epoch ms). */
export interface SentRequest {
  id: string;
  op: 'u' | 's';
  /** When it was due (open loop: latency counts from here). */
  due: number;
  sent: number;
  ack: number;
  partition: number;
  offset: number;
  /** The record's timestamp: the broker's append time on topics made by `patterns topics create`. */
  ts: number;
  err?: string;
}

export interface ReadResult {
  topic: string;
  /** When the reader got it (epoch ms). */
  rcv: number;
  ts: number;
  id: string | null;
  ok: boolean;
  code: string | null;
  dup: boolean;
  sourceTopic: string | null;
  sourcePartition: number | null;
}

export interface ReadDeadLetter {
  topic: string;
  rcv: number;
  id: string | null;
  code: string | null;
}

/** A Python helper beside this file, fed one JSON line of configuration, answering JSON lines. */
class PythonHelper {
  readonly child: ChildProcess;
  readonly stderr: string[] = [];
  readonly #ended: Promise<Record<string, unknown>>;
  #ready: Promise<void>;

  constructor(script: string, config: unknown, onLine: (line: Record<string, unknown>) => void) {
    this.child = spawn(PYTHON, ['-u', join(import.meta.dirname, script)], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.child.stderr?.on('data', (d: Buffer) => this.stderr.push(d.toString()));
    let readyResolve: () => void = () => undefined;
    this.#ready = new Promise((resolve) => (readyResolve = resolve));
    this.#ended = new Promise((resolve, reject) => {
      let end: Record<string, unknown> | undefined;
      const lines = createInterface({ input: this.child.stdout as NodeJS.ReadableStream });
      lines.on('line', (text) => {
        let line: Record<string, unknown>;
        try {
          line = JSON.parse(text) as Record<string, unknown>;
        } catch {
          this.stderr.push(`unparsable line: ${text}\n`);
          return;
        }
        if (line.k === 'ready') readyResolve();
        else if (line.k === 'end') end = line;
        else onLine(line);
      });
      this.child.once('error', reject);
      this.child.once('exit', (code) => {
        // The stdout lines may still be queued in readline; let them go first.
        setImmediate(() => {
          if (code === 0 && end) resolve(end);
          else reject(new Error(`${script} exited with ${code}: ${this.stderr.join('').slice(-2000)}`));
        });
      });
    });
    this.#ended.catch(() => undefined);
    this.child.stdin?.write(`${JSON.stringify(config)}\n`);
  }

  async ready(timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.#ready,
        this.#ended.then(() => {
          throw new Error('ended before it was ready');
        }),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`not ready in ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Asks it to stop (it flushes first) and resolves with its last line. */
  async stop(timeoutMs = 90_000): Promise<Record<string, unknown>> {
    this.child.stdin?.end('stop\n');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    try {
      return await this.#ended;
    } finally {
      clearTimeout(timer);
    }
  }

  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}

export interface LoadConfig {
  brokers: string;
  usageTopic: string;
  searchTopic: string;
  replyTopic: string;
  usageRate: number;
  searchRate: number;
  usage: { pattern_id: string; usage_data: Record<string, unknown> }[];
  searches: Record<string, unknown>[];
}

/** The open-loop producer (deploy_producer.py). It starts producing at once. */
export class LoadProducer {
  readonly requests: SentRequest[] = [];
  readonly #helper: PythonHelper;

  constructor(config: LoadConfig) {
    this.#helper = new PythonHelper('deploy_producer.py', config, (l) => {
      if (l.k !== 'req') return;
      this.requests.push({
        id: l.id as string,
        op: l.op as 'u' | 's',
        due: l.due as number,
        sent: l.sent as number,
        ack: (l.ack as number | undefined) ?? NaN,
        partition: (l.p as number | undefined) ?? -1,
        offset: (l.o as number | undefined) ?? -1,
        ts: (l.ts as number | undefined) ?? NaN,
        ...(typeof l.err === 'string' ? { err: l.err } : {}),
      });
    });
  }

  /** Stops producing, waits for every acknowledgement; the generator's worst lateness (ms). */
  async stop(): Promise<{ produced: number; maxLagMs: number; undelivered: number }> {
    const end = await this.#helper.stop();
    return {
      produced: end.produced as number,
      maxLagMs: end.maxLagMs as number,
      undelivered: end.undelivered as number,
    };
  }

  kill(): void {
    this.#helper.kill();
  }
}

/** Reads result, reply and dead-letter topics from their beginning (deploy_consumer.py). */
export class ResultReader {
  readonly results: ReadResult[] = [];
  readonly deadLetters: ReadDeadLetter[] = [];
  readonly errors: string[] = [];
  readonly #helper: PythonHelper;

  constructor(brokers: string, results: string[], dlqs: string[]) {
    this.#helper = new PythonHelper('deploy_consumer.py', { brokers, results, dlqs }, (l) => {
      if (l.k === 'res') {
        this.results.push({
          topic: l.t as string,
          rcv: l.rcv as number,
          ts: l.ts as number,
          id: (l.id as string | null) ?? null,
          ok: l.ok === true,
          code: (l.code as string | null) ?? null,
          dup: l.dup === true,
          sourceTopic: (l.st as string | null) ?? null,
          sourcePartition: typeof l.sp === 'number' ? l.sp : null,
        });
      } else if (l.k === 'dlq') {
        this.deadLetters.push({
          topic: l.t as string,
          rcv: l.rcv as number,
          id: (l.id as string | null) ?? null,
          code: (l.code as string | null) ?? null,
        });
      } else if (l.k === 'error') this.errors.push(String(l.error));
    });
  }

  ready(timeoutMs = 30_000): Promise<void> {
    return this.#helper.ready(timeoutMs);
  }

  async stop(): Promise<void> {
    await this.#helper.stop();
  }

  kill(): void {
    this.#helper.kill();
  }
}

// ---- The broker's log: rebalances, whatever client the members use ----

export interface GroupEvent {
  /** Epoch ms (the log's local time). */
  t: number;
  group: string;
  /**
   * stabilized: a classic group completed a rebalance (generation N);
   * prepare: a classic group started one (with the broker's reason);
   * epoch: a consumer-protocol (KIP-848) group bumped its group epoch (membership or subscriptions changed).
   */
  kind: 'stabilized' | 'prepare' | 'epoch';
  generation: number;
  members?: number;
  reason?: string;
}

const LOG_TIME = /^\[(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d),(\d{3})\] /;
const STABILIZED = /Stabilized group (\S+) generation (\d+) with (\d+) members/;
const PREPARE =
  /Preparing to rebalance group (\S+) in state \S+ with old generation (\d+) \(reason: (.*)\)\./;
const EPOCH = /\[GroupId (\S+)\] Bumped group epoch to (\d+)/;

export function parseGroupEvents(text: string, isOurs: (group: string) => boolean): GroupEvent[] {
  const events: GroupEvent[] = [];
  for (const line of text.split('\n')) {
    const time = LOG_TIME.exec(line);
    if (!time) continue;
    const n = time.slice(1).map(Number);
    const t = new Date(n[0] ?? 0, (n[1] ?? 1) - 1, n[2], n[3], n[4], n[5], n[6]).getTime();
    let m = STABILIZED.exec(line);
    if (m && isOurs(m[1] as string)) {
      events.push({
        t,
        group: m[1] as string,
        kind: 'stabilized',
        generation: Number(m[2]),
        members: Number(m[3]),
      });
      continue;
    }
    m = PREPARE.exec(line);
    if (m && isOurs(m[1] as string)) {
      events.push({
        t,
        group: m[1] as string,
        kind: 'prepare',
        generation: Number(m[2]),
        reason: (m[3] as string).slice(0, 300),
      });
      continue;
    }
    m = EPOCH.exec(line);
    if (m && isOurs(m[1] as string)) {
      events.push({ t, group: m[1] as string, kind: 'epoch', generation: Number(m[2]) });
    }
  }
  return events;
}

/**
 * The broker's server.log from the moment `start` was called: scripts/kafka.sh's broker writes it to
 * .cache/kafka/logs (BENCH_KAFKA_LOG names another file), rolling it over at 20 MB to server.log.1.
 */
export class BrokerLog {
  readonly path: string;
  #ino = 0;
  #offset = 0;

  constructor(path = process.env.BENCH_KAFKA_LOG || join(ROOT, '.cache/kafka/logs/server.log')) {
    this.path = path;
  }

  async start(): Promise<boolean> {
    try {
      const s = await stat(this.path);
      this.#ino = s.ino;
      this.#offset = s.size;
      return true;
    } catch {
      return false;
    }
  }

  async #read(path: string, from: number): Promise<string> {
    const file = await open(path, 'r');
    try {
      const size = (await file.stat()).size;
      const buffer = Buffer.alloc(Math.max(0, size - from));
      await file.read(buffer, 0, buffer.length, from);
      return buffer.toString('utf8');
    } finally {
      await file.close();
    }
  }

  /** Everything the broker logged since start() (across one rollover). */
  async text(): Promise<string> {
    const now = await stat(this.path);
    if (now.ino === this.#ino) return this.#read(this.path, this.#offset);
    let before = '';
    try {
      if ((await stat(`${this.path}.1`)).ino === this.#ino)
        before = await this.#read(`${this.path}.1`, this.#offset);
    } catch {
      // rolled over twice, or the broker was restarted with a fresh log: only the current file counts
    }
    return before + (await this.#read(this.path, 0));
  }
}

// ---- Who owns which partition: Kafka's own ConsumerGroupCommand (classic and consumer groups alike) ----

export interface GroupMember {
  group: string;
  clientId: string;
  consumerId: string;
  partitions: { topic: string; partition: number }[];
}

const run = promisify(execFile);

/** `kafka-consumer-groups --describe --members --verbose` for every group, through the broker's jars. */
export async function describeMembers(
  brokers: string,
  isOurs: (group: string) => boolean,
): Promise<GroupMember[]> {
  const lib = process.env.BENCH_KAFKA_LIB || join(ROOT, '.cache/kafka/4.4.0/lib');
  const { stdout } = await run(
    'java',
    [
      '-Xmx128m',
      '-XX:TieredStopAtLevel=1',
      '-Dlog4j2.level=ERROR',
      '-cp',
      `${lib}/*`,
      'org.apache.kafka.tools.consumer.group.ConsumerGroupCommand',
      '--bootstrap-server',
      brokers,
      '--describe',
      '--all-groups',
      '--members',
      '--verbose',
      '--timeout',
      '15000',
    ],
    { timeout: 60_000, maxBuffer: 16 * 1024 * 1024 },
  );
  return parseMembers(stdout, isOurs);
}

/** Parses the member tables (a header line per group, columns separated by spaces). */
export function parseMembers(text: string, isOurs: (group: string) => boolean): GroupMember[] {
  const members: GroupMember[] = [];
  let columns: string[] = [];
  for (const line of text.split('\n')) {
    const cells = line.trim().split(/\s+/);
    if (cells[0] === 'GROUP') {
      columns = cells;
      continue;
    }
    if (columns.length === 0 || cells.length < 5 || !isOurs(cells[0] as string)) continue;
    const at = (name: string) => {
      const i = columns.indexOf(name);
      return i >= 0 ? (cells[i] ?? '') : '';
    };
    // Classic groups: ASSIGNMENT; consumer-protocol groups: CURRENT-ASSIGNMENT (and a target beside it).
    const assignment = at('CURRENT-ASSIGNMENT') || at('ASSIGNMENT');
    const partitions: { topic: string; partition: number }[] = [];
    // Kafka 4.x prints `topic:0,1,2;topic2:3`; older tools `topic(0,1,2),topic2(3)`; `-` for none.
    const parts = assignment.includes('(')
      ? [...assignment.matchAll(/([^,()]+)\(([\d,]+)\)/g)].map((m) => [m[1] ?? '', m[2] ?? ''])
      : assignment.split(';').map((x) => [x.slice(0, x.lastIndexOf(':')), x.slice(x.lastIndexOf(':') + 1)]);
    for (const [topic, list] of parts) {
      if (!topic || !list) continue;
      for (const p of list.split(',')) {
        if (/^\d+$/.test(p)) partitions.push({ topic, partition: Number(p) });
      }
    }
    members.push({
      group: cells[0] as string,
      clientId: at('CLIENT-ID'),
      consumerId: at('CONSUMER-ID'),
      partitions,
    });
  }
  return members;
}

// ---- Stalls ----

export interface Interval {
  from: number;
  to: number;
}

/**
 * The stall intervals of one request partition. The partition is stalled while at least one of its requests
 * is outstanding (appended by the broker, `at`, and no result read yet) and no result of any of its
 * requests has been read since the later of (the moment it last had nothing outstanding, its last result).
 * So an interval opens when a request arrives at a partition with nothing outstanding, or at a result that
 * leaves requests outstanding, and closes at the partition's next result (or at `end`, still open).
 * Requests that never got a result keep the last interval open until `end`.
 */
export function stallIntervals(
  requests: { at: number; answeredAt: number | null }[],
  end: number,
): Interval[] {
  type Ev = { t: number; kind: 0 | 1 };
  const events: Ev[] = [];
  for (const r of requests) {
    events.push({ t: r.at, kind: 0 });
    if (r.answeredAt !== null) events.push({ t: Math.max(r.at, r.answeredAt), kind: 1 });
  }
  // At equal times the arrival first: a request answered in the same millisecond still counts as outstanding.
  events.sort((a, b) => a.t - b.t || a.kind - b.kind);
  const out: Interval[] = [];
  let outstanding = 0;
  let since: number | null = null;
  for (const e of events) {
    if (e.kind === 0) {
      if (outstanding === 0) since = e.t;
      outstanding++;
    } else {
      if (since !== null) out.push({ from: since, to: e.t });
      outstanding--;
      since = outstanding > 0 ? e.t : null;
    }
  }
  if (since !== null && outstanding > 0) out.push({ from: since, to: Math.max(since, end) });
  return out;
}

/** The longest part of any interval inside [from, to). */
export function longestWithin(intervals: Interval[], from: number, to: number): number {
  let best = 0;
  for (const i of intervals) best = Math.max(best, Math.min(i.to, to) - Math.max(i.from, from));
  return best;
}

// ---- Windows and the ASCII timeline ----

export interface WindowRow {
  /** Seconds from the start of the load. */
  from: number;
  to: number;
  phase: string;
  requests: number;
  answered: number;
  p99: number;
  max: number;
  notes: string[];
}

export function windowRows(
  latencies: { due: number; ms: number | null }[],
  start: number,
  end: number,
  windowMs: number,
  phaseAt: (t: number) => string,
  marks: { t: number; label: string }[],
): WindowRow[] {
  const rows: WindowRow[] = [];
  for (let w = start; w < end; w += windowMs) {
    const inside = latencies.filter((l) => l.due >= w && l.due < w + windowMs);
    const answered = inside.flatMap((l) => (l.ms === null ? [] : [l.ms])).sort((a, b) => a - b);
    rows.push({
      from: Math.round((w - start) / 100) / 10,
      to: Math.round((Math.min(end, w + windowMs) - start) / 100) / 10,
      phase: phaseAt(w),
      requests: inside.length,
      answered: answered.length,
      p99: Math.round(percentile(answered, 99) * 10) / 10,
      max: Math.round((answered[answered.length - 1] ?? NaN) * 10) / 10,
      notes: marks.filter((m) => m.t >= w && m.t < w + windowMs).map((m) => m.label),
    });
  }
  return rows;
}

/** p99 per window as bars on a log scale (10 characters per decade, 1 ms = no bar). */
export function asciiTimeline(rows: WindowRow[]): string[] {
  const bar = (ms: number) =>
    Number.isFinite(ms) && ms > 1 ? '#'.repeat(Math.round(10 * Math.log10(ms))) : '';
  const scale = ['1 ms', '10 ms', '100 ms', '1 s', '10 s'].map((l) => `|${l}`.padEnd(10)).join('');
  const lines = [
    `  ${'window (s)'.padEnd(12)} ${'phase'.padEnd(13)} ${'p99 ms'.padStart(7)}   ${'log:'.padEnd(9)}${scale}`.trimEnd(),
  ];
  for (const r of rows) {
    const lost = r.requests - r.answered;
    const label = `${String(r.from).padStart(5)}-${String(r.to).padEnd(6)} ${r.phase.padEnd(13)} ${(Number.isFinite(r.p99) ? r.p99.toFixed(0) : 'n/a').padStart(7)}`;
    const notes = [...(lost > 0 ? [`${lost} unanswered`] : []), ...r.notes];
    lines.push(
      `  ${label}   ${''.padEnd(9)}|${bar(r.p99)}${notes.length > 0 ? `  <- ${notes.join('; ')}` : ''}`,
    );
  }
  return lines;
}

// ---- The machine: how busy all CPUs were (the harness, broker, database and workers share them) ----

/** Busy and total jiffies of all CPUs so far (/proc/stat); NaN off Linux. */
export function cpuTimes(): { busy: number; total: number } {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    const total = f.reduce((a, b) => a + b, 0);
    const idle = (f[3] ?? 0) + (f[4] ?? 0);
    return { busy: total - idle, total };
  } catch {
    return { busy: NaN, total: NaN };
  }
}
