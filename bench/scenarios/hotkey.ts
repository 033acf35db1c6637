// Scenario "hotkey" (only when named): what one producer's long run of one key's writes does to the other
// keys of its partition. A pattern of 40,000 usage events; each attack is produced at once into partition 2
// of pattern.usage with the key `attacker`, then valid record_usage of 50 other patterns (their own keys) go
// to the same partition at 20/s for 30 s. Reported: the valid events' request -> result latency against
// the same run's without an attack, and how long the attack took to be answered. Report lines only: no
// issue sets a goal; bench/ANALYSIS.md has the before and after of the batching of one pattern's
// update_stats.
import { randomUUID } from 'node:crypto';
import type { Consumer, Message, Producer } from 'kafkajs';
import { seededUuid } from '../lib/dataset.ts';
import { createBenchDatabase } from '../lib/db.ts';
import { benchKafka, bulkProducer, createBenchTopics, deleteBenchTopics } from '../lib/kafka.ts';
import { spawnNode, type Child } from '../lib/proc.ts';
import { goal, type Goal, type ScenarioOptions, type ScenarioResult } from '../lib/scenario.ts';
import { fmt, summarize, type LatencySummary } from '../lib/stats.ts';
import { WORKER_CLI, workerEnv } from './ingestion.ts';

const PARTITION = 2;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Attack {
  name: string;
  /** The attack's requests, in the order produced. */
  requests(big: string, count: number): Record<string, unknown>[];
}

const ATTACKS: Attack[] = [
  { name: 'none', requests: () => [] },
  {
    name: "a run of one pattern's update_stats",
    requests: (big, n) => Array.from({ length: n }, () => ({ operation: 'update_stats', pattern_id: big })),
  },
  {
    name: 'update_stats, each after a usage event of the pattern',
    requests: (big, n) =>
      Array.from({ length: n / 2 }, () => [
        { operation: 'record_usage', pattern_id: big, usage_data: { success: true } },
        { operation: 'update_stats', pattern_id: big },
      ]).flat(),
  },
  {
    name: 'a run of cheap writes (update_relationship finding nothing)',
    requests: (big, n) =>
      Array.from({ length: n }, () => ({
        operation: 'update_relationship',
        relationship_data: {
          source_pattern_id: big,
          target_pattern_id: '00000000-0000-4000-8000-00000000beef',
          relationship_type: 'similar',
          strength: 0.7,
        },
      })),
  },
];

/** When each correlation id's result arrived (ms, performance.now()). */
class ResultClock {
  readonly arrived = new Map<string, number>();
  #consumer: Consumer | undefined;

  async start(kafka: ReturnType<typeof benchKafka>, topic: string): Promise<this> {
    this.#consumer = kafka.consumer({ groupId: `bench-hotkey-${randomUUID()}`, maxWaitTimeInMs: 50 });
    const consumer = this.#consumer;
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    const joined = new Promise<void>((resolve) => consumer.on(consumer.events.GROUP_JOIN, () => resolve()));
    await consumer.run({
      autoCommit: false,
      eachMessage: ({ message }) => {
        const now = performance.now();
        const body = JSON.parse(message.value?.toString() ?? '{}') as {
          metadata?: { correlation_id?: string | null };
        };
        const cid = body.metadata?.correlation_id;
        if (cid && !this.arrived.has(cid)) this.arrived.set(cid, now);
        return Promise.resolve();
      },
    });
    await joined;
    return this;
  }

  async waitFor(cids: readonly string[], timeoutMs: number): Promise<boolean> {
    const deadline = performance.now() + timeoutMs;
    while (performance.now() < deadline) {
      if (cids.every((c) => this.arrived.has(c))) return true;
      await sleep(200);
    }
    return false;
  }

  async stop(): Promise<void> {
    await this.#consumer?.disconnect();
  }
}

interface AttackFigures {
  name: string;
  attackMessages: number;
  valid: LatencySummary;
  validAnswered: number;
  validSent: number;
  /** From the first attack message to its last result (s). */
  attackAnsweredS: number | null;
}

export async function hotkey(options: ScenarioOptions): Promise<ScenarioResult> {
  const started = Date.now();
  const events = options.smoke ? 2_000 : 40_000;
  const attackSize = options.smoke ? 200 : 3_000;
  const validSeconds = options.smoke ? 3 : 30;
  const validRate = 20;
  const kafka = benchKafka('bench-hotkey');
  const db = await createBenchDatabase('hotkey');
  const names = await createBenchTopics(kafka);
  const big = seededUuid(7, 'hotkey', 0);
  const valid = Array.from({ length: 50 }, (_, i) => seededUuid(7, 'hotkey-valid', i));
  let producer: Producer | undefined;
  let child: Child | undefined;
  const clock = new ResultClock();
  const figures: AttackFigures[] = [];
  try {
    await db.pool.query(
      `INSERT INTO pattern_templates (id, pattern_name, pattern_type, language)
       SELECT id, 'hotkey-' || n, 'code', 'go' FROM unnest($1::uuid[]) WITH ORDINALITY AS t(id, n)`,
      [[big, ...valid]],
    );
    // The events of the big pattern, a minute apart, as a producer can build them up beforehand.
    await db.pool.query(
      `INSERT INTO pattern_usage_events (id, pattern_id, success, execution_time_ms, used_at)
       SELECT gen_random_uuid(), $1, i % 3 <> 0, i % 100, timestamptz '2026-11-01' + i * interval '1 minute'
         FROM generate_series(1, $2::int) i`,
      [big, events],
    );
    producer = await bulkProducer(kafka);
    await clock.start(kafka, names.result('pattern.usage'));
    child = await spawnNode({
      script: WORKER_CLI,
      args: ['worker'],
      env: { ...workerEnv(db, names), OTEL_SDK_DISABLED: 'true' },
    });
    await child.waitReady();
    const topic = names.request('pattern.usage');
    const send = (messages: Message[]) =>
      (producer as Producer).send({
        topic,
        acks: -1,
        messages: messages.map((m) => ({ ...m, partition: PARTITION })),
      });

    for (const attack of ATTACKS) {
      const attackCids: string[] = [];
      const attackMessages = attack.requests(big, attackSize).map((r) => {
        const correlation_id = randomUUID();
        attackCids.push(correlation_id);
        return { key: 'attacker', value: JSON.stringify({ ...r, correlation_id }) };
      });
      const attackStart = performance.now();
      for (let i = 0; i < attackMessages.length; i += 500) await send(attackMessages.slice(i, i + 500));
      const sentAt = new Map<string, number>();
      const end = performance.now() + validSeconds * 1000;
      for (let i = 0; performance.now() < end; i++) {
        const pattern = valid[i % valid.length] as string;
        const correlation_id = randomUUID();
        sentAt.set(correlation_id, performance.now());
        await send([
          {
            key: pattern,
            value: JSON.stringify({
              operation: 'record_usage',
              correlation_id,
              pattern_id: pattern,
              usage_data: { success: true, execution_time_ms: 5 },
            }),
          },
        ]);
        await sleep(1000 / validRate);
      }
      const all = [...sentAt.keys(), ...attackCids];
      const complete = await clock.waitFor(all, options.smoke ? 60_000 : 600_000);
      const latencies = [...sentAt].flatMap(([cid, at]) => {
        const arrived = clock.arrived.get(cid);
        return arrived === undefined ? [] : [arrived - at];
      });
      const lastAttack = Math.max(...attackCids.map((c) => clock.arrived.get(c) ?? Number.NaN));
      const f: AttackFigures = {
        name: attack.name,
        attackMessages: attackMessages.length,
        valid: summarize(latencies),
        validAnswered: latencies.length,
        validSent: sentAt.size,
        attackAnsweredS:
          attackCids.length > 0 && Number.isFinite(lastAttack) ? (lastAttack - attackStart) / 1000 : null,
      };
      figures.push(f);
      options.log(
        `  ${f.name} (${f.attackMessages} messages): valid p50 ${fmt(f.valid.p50)} ms, p99 ${fmt(f.valid.p99)} ms, ` +
          `max ${fmt(f.valid.max)} ms (${f.validAnswered}/${f.validSent} answered)` +
          (f.attackAnsweredS === null ? '' : `; the attack answered in ${fmt(f.attackAnsweredS)} s`) +
          (complete ? '' : '; NOT every request was answered'),
      );
    }
  } finally {
    await clock.stop().catch(() => undefined);
    await child?.stop();
    await producer?.disconnect().catch(() => undefined);
    await deleteBenchTopics(kafka, names);
    await db.drop();
  }

  const quiet = figures[0]?.valid.p99 ?? Number.NaN;
  const goals: Goal[] = figures
    .slice(1)
    .map((f) =>
      goal(
        `hotkey: valid p99 behind ${f.name} vs without an attack`,
        'report',
        f.valid.p99 / quiet,
        'x',
        null,
        `${fmt(f.valid.p99)} vs ${fmt(quiet)} ms; ${f.validAnswered}/${f.validSent} answered` +
          (f.attackAnsweredS === null
            ? ''
            : `; the ${f.attackMessages} attack messages answered in ${fmt(f.attackAnsweredS)} s`),
      ),
    );
  return {
    scenario: 'hotkey',
    smoke: options.smoke,
    startedAt: new Date(started).toISOString(),
    durationS: (Date.now() - started) / 1000,
    params: { events, attackSize, validSeconds, validRate, partition: PARTITION },
    figures: { attacks: figures },
    goals,
    summary: figures.map(
      (f) =>
        `${f.name}: valid p99 ${fmt(f.valid.p99)} ms (${fmt(f.valid.p99 / quiet, 2)}x without an attack)` +
        (f.attackAnsweredS === null ? '' : `, attack answered in ${fmt(f.attackAnsweredS)} s`),
    ),
  };
}
