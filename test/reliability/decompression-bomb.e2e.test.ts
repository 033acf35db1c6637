// Decompression bombs: record batches of a few KB that decompress to hundreds of MB, produced by an
// independent client (librdkafka, test/support/poison/bomb.py) with each codec Kafka has, and a record
// of a million empty headers (360 bytes on disk). The client library inflates a batch whole, so one of
// them used to take the worker's memory past its pod's limit (512 MiB in the Helm chart), and the
// headers its heap past the shipped 128 MB (a crash), again after each restart. The worker, run with
// the shipped heap settings, must refuse each bomb unread, by its offsets (an error result and a dead
// letter), apply the valid insert behind it, keep its memory bounded, and commit past everything.
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import type { ModelResult } from '../../src/contracts/results.ts';
import { KafkaClient } from '../../src/messaging/kafka/client.ts';
import { gatherStatus } from '../../src/messaging/operations/status.ts';
import { createStack, type Stack } from '../support/stack.ts';
import type { WorkerProcess } from '../support/worker-process.ts';

vi.setConfig({ testTimeout: 240_000, hookTimeout: 120_000 });

const MiB = 1024 * 1024;
/** Each bomb decompresses to more than the default WORKER_MAX_DECOMPRESSED_BATCH_BYTES (16 MiB) and
 * stays under the broker's default max.message.bytes (1 MiB) compressed. */
/** Empty headers in one record: the library made 208 MB of heap of them. */
const HEADERS = 1_000_000;
const BOMBS = [
  { codec: 'zstd', zeros: 600 * MiB },
  { codec: 'gzip', zeros: 300 * MiB },
  { codec: 'lz4', zeros: 200 * MiB },
  { codec: 'snappy', zeros: 20 * MiB },
  { codec: 'zstd', headers: HEADERS },
] as const;
/** Peak resident memory allowed: the worker with every bomb inflated peaked far above it. */
const MAX_PEAK_RSS = 400 * MiB;

interface Sent {
  topic: string;
  partition: number;
  offset: number;
}

async function produce(records: Record<string, unknown>[]): Promise<Sent[]> {
  const script = join(import.meta.dirname, '../support/poison/bomb.py');
  return new Promise((resolve, reject) => {
    const child = spawn('/usr/bin/python3', [script], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.once('error', reject);
    child.once('exit', (code) =>
      code === 0 ? resolve(JSON.parse(out) as Sent[]) : reject(new Error(`bomb.py exited ${code}: ${err}`)),
    );
    child.stdin.end(JSON.stringify({ brokers: process.env.KAFKA_BROKERS ?? '127.0.0.1:9092', records }));
  });
}

async function peakRss(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = /VmHWM:\s+(\d+) kB/.exec(status)?.[1];
  return Number(kb) * 1024;
}

let stack: Stack;
let worker: WorkerProcess;

beforeAll(async () => {
  stack = await createStack({ partitions: 1 });
  const pkg = JSON.parse(await readFile(join(import.meta.dirname, '../../package.json'), 'utf8')) as {
    config: { nodeOptions: string };
  };
  // The heap settings the image and `npm start` use.
  worker = await stack.worker({ NODE_OPTIONS: pkg.config.nodeOptions });
});
afterAll(async () => stack?.close());

it('refuses each bomb unread by its offsets, applies what follows it, and stays within its memory', async () => {
  const topic = stack.names.request('pattern.insert');
  const cases = BOMBS.map((bomb, i) => ({
    name: 'headers' in bomb ? `${bomb.headers} headers` : bomb.codec,
    code: 'headers' in bomb ? 'VALIDATION_ERROR' : 'PAYLOAD_TOO_LARGE',
    says:
      'headers' in bomb
        ? `a record holds ${bomb.headers} headers, more than the 50000 a fetch reads`
        : 'WORKER_MAX_DECOMPRESSED_BATCH_BYTES',
    id: randomUUID(),
    cid: randomUUID(),
    bomb: 'headers' in bomb ? { value: 'x', headers: bomb.headers } : { zeros: bomb.zeros },
    codec: bomb.codec,
    i,
  }));
  const records = cases.flatMap((c) => {
    const body = {
      operation: 'insert',
      correlation_id: c.cid,
      data: { pattern_id: c.id, pattern_name: `AfterBomb${c.i}`, pattern_type: 'code', language: 'go' },
    };
    // The valid insert goes compressed with the same codec, in a batch of its own.
    return [
      { topic, codec: c.codec, key: 'k', ...c.bomb },
      { topic, codec: c.codec, key: 'k', value: JSON.stringify(body) },
    ];
  });
  const sent = await produce(records);

  const resultTopic = stack.names.result('pattern.insert');
  const dlqTopic = stack.names.dlq('pattern.insert');
  const results = await stack.results.waitForCount(resultTopic, 2 * cases.length, 90_000);
  const dead = await stack.results.waitForCount(dlqTopic, cases.length, 30_000);
  expect(worker.child.exitCode).toBeNull();
  // Never inflated: the worker's peak resident memory stayed far below the bombs' size.
  expect(await peakRss(worker.child.pid as number)).toBeLessThan(MAX_PEAK_RSS);

  const refused = results.map((m) => m.json<ModelResult>()).filter((r) => !r.success);
  expect(refused).toHaveLength(cases.length);
  for (const c of cases) {
    // The valid insert behind the bomb was applied and answered.
    const answer = results.find((m) => m.json<ModelResult>().metadata?.correlation_id === c.cid);
    expect(answer?.json<ModelResult>().success, c.name).toBe(true);
    const row = await stack.db.pool.query('SELECT 1 FROM pattern_templates WHERE id = $1', [c.id]);
    expect(row.rowCount, c.name).toBe(1);
    // The bomb: an error result naming its offsets and why, and a dead letter at its offset.
    const offset = sent[2 * c.i]?.offset as number;
    const at = `offsets ${offset}-${offset} of ${topic}/0 (1 records)`;
    const error = refused.find((r) => r.error?.message.includes(at))?.error;
    expect(error?.code, `${c.name}: ${JSON.stringify(refused)}`).toBe(c.code);
    expect(error?.message).toContain(c.says);
    const letter = dead.find(
      (m) =>
        m.headers['kafka_dlt-original-offset']?.toString('hex') === offset.toString(16).padStart(16, '0'),
    );
    expect(letter?.headers['kafka_dlt-exception-fqcn']?.toString(), c.name).toBe(c.code);
    expect(letter?.value).toBeNull();
  }

  // Committed past everything.
  let lag: number | string = 'unknown';
  for (const deadline = Date.now() + 30_000; Date.now() < deadline;) {
    const status = await gatherStatus({
      kafka: new KafkaClient('bomb-status', { brokers: stack.env.KAFKA_BROKERS!.split(',') }),
      names: stack.names,
      groupId: stack.env.KAFKA_GROUP_ID!,
      clientId: 'bomb-status',
    });
    lag = status.totalLag;
    if (lag === 0) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  expect(lag).toBe(0);
});

it('refuses requests too large to hold parsed, and takes in heavy valid ones a few at a time', async () => {
  // Valid usage events whose context is a wide array of empty objects take 21 times their bytes parsed:
  // four of 990 KB, in one zstd batch of 800 bytes, ran the worker out of heap, again on every restart.
  const patternId = randomUUID();
  await stack.send('pattern.insert', [
    {
      correlation_id: randomUUID(),
      data: { pattern_id: patternId, pattern_name: 'HeavyContext', pattern_type: 'code', language: 'go' },
    },
  ]);
  const usage = (objects: number) => {
    const cid = randomUUID();
    const value =
      `{"operation":"record_usage","correlation_id":"${cid}","pattern_id":"${patternId}",` +
      `"usage_data":{"success":true,"context":{"a":[${'{},'.repeat(objects - 1)}{}]}}}`;
    return { cid, value };
  };
  const topic = stack.names.request('pattern.usage');
  const tooMany = Array.from({ length: 6 }, () => usage(330_000));
  // 98,000 values each, under the bound: about 6 MB of heap parsed, 60 of them far more than the heap.
  const heavy = Array.from({ length: 60 }, () => usage(49_000));
  await produce([
    { topic, codec: 'zstd', key: patternId, values: tooMany.map((u) => u.value) },
    { topic, codec: 'zstd', key: patternId, values: heavy.map((u) => u.value) },
  ]);
  const results = await stack.results.waitForCount(stack.names.result('pattern.usage'), 66, 120_000);
  expect(worker.child.exitCode).toBeNull();
  const byCid = new Map(
    results.map((m) => [m.json<ModelResult>().metadata?.correlation_id, m.json<ModelResult>()]),
  );
  for (const { cid } of tooMany) {
    expect(byCid.get(cid)?.error?.code).toBe('VALIDATION_ERROR');
    expect(byCid.get(cid)?.error?.message).toMatch(/660008 values and members .* at most 100000/);
  }
  for (const { cid } of heavy) expect(byCid.get(cid)?.success, cid).toBe(true);
  const { rows } = await stack.db.pool.query<{ usage_count: number }>(
    'SELECT usage_count FROM pattern_templates WHERE id = $1',
    [patternId],
  );
  expect(rows[0]?.usage_count).toBe(60);
  expect(await peakRss(worker.child.pid as number)).toBeLessThan(MAX_PEAK_RSS);
});

it('refuses requests of too many headers, and takes in requests of many headers a few at a time', async () => {
  // Sixty requests of 45,000 empty headers each, 41 KB on the broker with lz4, ran the shipped heap out on
  // every start: a header takes about 300 bytes of heap as read, and the lane's bound counted none.
  const patternId = randomUUID();
  await stack.send('pattern.insert', [
    {
      correlation_id: randomUUID(),
      data: { pattern_id: patternId, pattern_name: 'ManyHeaders', pattern_type: 'code', language: 'go' },
    },
  ]);
  const usage = () => {
    const cid = randomUUID();
    return {
      cid,
      value: JSON.stringify({
        operation: 'record_usage',
        correlation_id: cid,
        pattern_id: patternId,
        usage_data: { success: true },
      }),
    };
  };
  const topic = stack.names.request('pattern.usage');
  const tooMany = Array.from({ length: 60 }, usage);
  const many = Array.from({ length: 100 }, usage);
  await produce([
    { topic, codec: 'lz4', key: patternId, values: tooMany.map((u) => u.value), headers: 45_000 },
    { topic, codec: 'lz4', key: patternId, values: many.map((u) => u.value), headers: 4_096 },
  ]);
  const resultTopic = stack.names.result('pattern.usage');
  const wanted = new Set<string>([...tooMany, ...many].map((u) => u.cid));
  const answered = (all: { topic: string; json: <T>() => T }[]) =>
    all.filter(
      (m) => m.topic === resultTopic && wanted.has(m.json<ModelResult>().metadata?.correlation_id ?? ''),
    );
  const results = answered(
    await stack.results.waitFor((all) => answered(all).length >= wanted.size, 120_000, 'every answer'),
  );
  expect(worker.child.exitCode).toBeNull();
  const byCid = new Map(
    results.map((m) => [m.json<ModelResult>().metadata?.correlation_id, m.json<ModelResult>()]),
  );
  for (const { cid } of tooMany) {
    expect(byCid.get(cid)?.error?.code).toBe('VALIDATION_ERROR');
    expect(byCid.get(cid)?.error?.message).toMatch(/has 45000 headers; at most 4096 are accepted/);
  }
  for (const { cid } of many) expect(byCid.get(cid)?.success, cid).toBe(true);
  const { rows } = await stack.db.pool.query<{ usage_count: number }>(
    'SELECT usage_count FROM pattern_templates WHERE id = $1',
    [patternId],
  );
  expect(rows[0]?.usage_count).toBe(100);
  expect(await peakRss(worker.child.pid as number)).toBeLessThan(MAX_PEAK_RSS);
});
