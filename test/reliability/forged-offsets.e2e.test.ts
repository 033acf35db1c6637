// Record batches whose records carry offset deltas their producer chose (test/support/poison/
// forged_batch.py; the broker keeps them as written). Taken as written, a delta past its batch made the
// worker skip the honest messages behind it and commit past them (lost for good), deltas that go back
// dropped records without an answer, and a delta of -1 in a batch read in parts held the partition's fetch
// position still (stuck, fetching the same bytes again and again). Each such record must be refused by
// name and dead-lettered, every other record applied, and the partition committed to its end.
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import type { ModelResult } from '../../src/contracts/results.ts';
import { KafkaClient } from '../../src/messaging/kafka/client.ts';
import { gatherStatus } from '../../src/messaging/operations/status.ts';
import { createStack, type Stack } from '../support/stack.ts';

vi.setConfig({ testTimeout: 120_000, hookTimeout: 120_000 });

interface Forged {
  value: string;
  delta: number;
  headers?: number;
}

type Produced = { error_code: number; base_offset: number }[];

async function produceForged(topic: string, batches: Forged[][]): Promise<Produced> {
  const script = join(import.meta.dirname, '../support/poison/forged_batch.py');
  return new Promise((resolve, reject) => {
    const child = spawn('/usr/bin/python3', [script], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.once('error', reject);
    child.once('exit', (code) =>
      code === 0
        ? resolve(JSON.parse(out) as Produced)
        : reject(new Error(`forged_batch.py exited ${code}: ${err}`)),
    );
    const broker = process.env.KAFKA_BROKERS ?? '127.0.0.1:9092';
    child.stdin.end(JSON.stringify({ broker, topic, partition: 0, batches }));
  });
}

let stack: Stack;

beforeAll(async () => {
  stack = await createStack({ partitions: 1 });
  await stack.worker();
});
afterAll(async () => stack?.close());

it('refuses records whose batch gives them an offset it cannot hold, and loses and stalls nothing behind them', async () => {
  const topic = stack.names.request('pattern.insert');
  const insert = (name: string) => {
    const id = randomUUID();
    const cid = randomUUID();
    const value = JSON.stringify({
      correlation_id: cid,
      data: { pattern_id: id, pattern_name: name, pattern_type: 'code', language: 'go' },
    });
    return { name, id, cid, value };
  };
  const ahead = [insert('AheadFine'), insert('AheadForged')];
  const backwards = [insert('BackOne'), insert('BackTwo'), insert('BackThree')];
  // 50,000 empty headers: the fetch reads this batch in two parts, the second from past its first record.
  const inParts = [insert('PartsForged'), insert('PartsFine')];
  const sent = await produceForged(topic, [
    [
      { value: ahead[0]!.value, delta: 0 },
      { value: ahead[1]!.value, delta: 50 },
    ],
    backwards.map((b, i) => ({ value: b.value, delta: [1, 0, 0][i]! })),
    [
      { value: inParts[0]!.value, delta: -1, headers: 50_000 },
      { value: inParts[1]!.value, delta: 1 },
    ],
  ]);
  expect(sent.map((s) => s.error_code)).toEqual([0, 0, 0]);
  const honest = Array.from({ length: 5 }, (_, i) => insert(`Honest${i}`));
  await stack.send(
    'pattern.insert',
    honest.map((h) => ({ value: h.value })),
  );

  const applied = [ahead[0]!, inParts[1]!, ...honest];
  const refused = [
    { ...ahead[1]!, delta: 50, offset: sent[0]!.base_offset + 1 },
    ...backwards.map((b, i) => ({ ...b, delta: [1, 0, 0][i]!, offset: sent[1]!.base_offset + i })),
    { ...inParts[0]!, delta: -1, offset: sent[2]!.base_offset },
  ];
  const results = await stack.results.waitForCount(stack.names.result('pattern.insert'), 12, 60_000);
  const dead = await stack.results.waitForCount(stack.names.dlq('pattern.insert'), refused.length, 30_000);
  const answer = (cid: string) =>
    results.map((m) => m.json<ModelResult>()).find((r) => r.metadata?.correlation_id === cid);

  for (const a of applied) {
    expect(answer(a.cid)?.success, a.name).toBe(true);
    const row = await stack.db.pool.query('SELECT 1 FROM pattern_templates WHERE id = $1', [a.id]);
    expect(row.rowCount, a.name).toBe(1);
  }
  for (const r of refused) {
    const result = answer(r.cid);
    expect(result?.error?.code, r.name).toBe('VALIDATION_ERROR');
    expect(result?.error?.message, r.name).toContain(`gives it offset delta ${r.delta}`);
    expect(result?.metadata?.source?.offset, r.name).toBe(String(r.offset));
    const row = await stack.db.pool.query('SELECT 1 FROM pattern_templates WHERE id = $1', [r.id]);
    expect(row.rowCount, r.name).toBe(0);
    // Dead-lettered with its value, at the offset it was read at.
    const letter = dead.find((m) => m.value?.toString() === r.value);
    expect(letter?.headers['kafka_dlt-original-offset']?.toString('hex'), r.name).toBe(
      r.offset.toString(16).padStart(16, '0'),
    );
    expect(letter?.headers['kafka_dlt-exception-message']?.toString(), r.name).toContain('malformed batch');
  }
  // Each record answered once: nothing dropped, nothing read twice.
  expect(results).toHaveLength(applied.length + refused.length);

  let lag: number | string = 'unknown';
  for (const deadline = Date.now() + 30_000; Date.now() < deadline;) {
    const status = await gatherStatus({
      kafka: new KafkaClient('forged-status', { brokers: stack.env.KAFKA_BROKERS!.split(',') }),
      names: stack.names,
      groupId: stack.env.KAFKA_GROUP_ID!,
      clientId: 'forged-status',
    });
    lag = status.totalLag;
    if (lag === 0) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  expect(lag).toBe(0);
});
