// Decompression bombs: record batches of a few KB that decompress to hundreds of MB, produced by an
// independent client (librdkafka, test/support/poison/bomb.py) with each codec Kafka has. The client
// library inflates a batch whole, so one of them used to take the worker's memory past its pod's
// limit (512 MiB in the Helm chart), and again after each restart. The worker must refuse each bomb
// unread, by its offsets (an error result and a dead letter), apply the valid insert behind it, keep
// its memory bounded, and commit past everything.
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
const BOMBS = [
  { codec: 'zstd', zeros: 600 * MiB },
  { codec: 'gzip', zeros: 300 * MiB },
  { codec: 'lz4', zeros: 200 * MiB },
  { codec: 'snappy', zeros: 20 * MiB },
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
  worker = await stack.worker();
});
afterAll(async () => stack?.close());

it('refuses each bomb unread by its offsets, applies what follows it, and stays within its memory', async () => {
  const topic = stack.names.request('pattern.insert');
  const inserts = BOMBS.map(({ codec }) => ({
    codec,
    id: randomUUID(),
    cid: randomUUID(),
  }));
  const records = BOMBS.flatMap((bomb, i) => {
    const insert = inserts[i]!;
    const body = {
      operation: 'insert',
      correlation_id: insert.cid,
      data: {
        pattern_id: insert.id,
        pattern_name: `AfterThe${bomb.codec}Bomb`,
        pattern_type: 'code',
        language: 'go',
      },
    };
    // The valid insert goes compressed with the same codec, in a batch of its own.
    return [
      { topic, codec: bomb.codec, key: 'k', zeros: bomb.zeros },
      { topic, codec: bomb.codec, key: 'k', value: JSON.stringify(body) },
    ];
  });
  const sent = await produce(records);
  const bombs = sent.filter((_, i) => i % 2 === 0);

  const resultTopic = stack.names.result('pattern.insert');
  const dlqTopic = stack.names.dlq('pattern.insert');
  const results = await stack.results.waitForCount(resultTopic, 2 * BOMBS.length, 90_000);
  const dead = await stack.results.waitForCount(dlqTopic, BOMBS.length, 30_000);
  expect(worker.child.exitCode).toBeNull();
  // Never inflated: the worker's peak resident memory stayed far below the bombs' size.
  expect(await peakRss(worker.child.pid as number)).toBeLessThan(MAX_PEAK_RSS);

  // Every valid insert behind a bomb was applied and answered.
  for (const insert of inserts) {
    const answer = results.find((m) => m.json<ModelResult>().metadata?.correlation_id === insert.cid);
    expect(answer?.json<ModelResult>().success, insert.codec).toBe(true);
    const row = await stack.db.pool.query('SELECT 1 FROM pattern_templates WHERE id = $1', [insert.id]);
    expect(row.rowCount, insert.codec).toBe(1);
  }
  // Every bomb: an error result naming its offsets and the setting, and a dead letter at its offset.
  const refused = results.map((m) => m.json<ModelResult>()).filter((r) => !r.success);
  expect(refused).toHaveLength(BOMBS.length);
  for (const [i, bomb] of bombs.entries()) {
    const at = `offsets ${bomb.offset}-${bomb.offset} of ${topic}/0 (1 records)`;
    const error = refused.find((r) => r.error?.message.includes(at))?.error;
    expect(error?.code, `${BOMBS[i]?.codec}: ${JSON.stringify(refused)}`).toBe('PAYLOAD_TOO_LARGE');
    expect(error?.message).toContain('WORKER_MAX_DECOMPRESSED_BATCH_BYTES');
    const letter = dead.find(
      (m) =>
        m.headers['kafka_dlt-original-offset']?.toString('hex') ===
        bomb.offset.toString(16).padStart(16, '0'),
    );
    expect(letter?.headers['kafka_dlt-exception-fqcn']?.toString(), BOMBS[i]?.codec).toBe(
      'PAYLOAD_TOO_LARGE',
    );
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
