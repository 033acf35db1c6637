// The processing engine against the real broker and database, in a worker process: order per key with
// concurrency on, lanes that a search burst cannot starve, and bounded retries of errors that are not
// transient. (SIGKILL with many messages in flight: test/reliability/in-flight-crash.e2e.test.ts.)
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { ModelResult } from '../../src/contracts/results.ts';
import { NodePatternStorageEffect } from '../../src/nodes/index.ts';
import { readBigEndian } from '../../src/messaging/stages/encode.ts';
import { createStack, type Stack } from '../support/stack.ts';

vi.setConfig({ testTimeout: 120_000 });

const pattern = (name: string, id: string) => ({
  pattern_id: id,
  pattern_name: name,
  pattern_type: 'code',
  language: 'go',
  confidence_score: 0.8,
});

describe('order per key with concurrency inside a partition', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await createStack({ partitions: 1 });
    await stack.worker({ WORKER_WRITES_CONCURRENCY: '8', DB_POOL_MAX: '12' });
  });
  afterAll(async () => stack.close());

  it('applies and answers each key in order while different keys run side by side', async () => {
    const keys = Array.from({ length: 40 }, () => randomUUID());
    const steps = 8;
    await stack.producer.send({
      topic: stack.names.request('pattern.insert'),
      messages: keys.map((id, i) => ({
        key: id,
        value: JSON.stringify({ data: pattern(`Ordered${i}`, id) }),
      })),
    });
    // Rounds over the keys: each key's updates are spread over the partition between other keys'.
    const messages = [];
    for (let s = 1; s <= steps; s++) {
      for (const id of keys) {
        messages.push({
          key: id,
          value: JSON.stringify({ operation: 'update', pattern_id: id, data: { description: `step ${s}` } }),
        });
      }
    }
    await stack.producer.send({ topic: stack.names.request('pattern.insert'), messages });
    const total = keys.length * (steps + 1);
    const results = await stack.results.waitForCount(stack.names.result('pattern.insert'), total, 60_000);
    const parsed = results.map((m) => ({ key: m.key?.toString() ?? '', result: m.json<ModelResult>() }));
    expect(parsed.every((r) => r.result.success)).toBe(true);

    // Results of one key arrive in the order of its requests.
    const byKey = new Map<string, number[]>();
    for (const { key, result } of parsed) {
      byKey.set(key, [...(byKey.get(key) ?? []), Number(result.metadata.source?.offset)]);
    }
    for (const offsets of byKey.values()) expect(offsets).toEqual([...offsets].sort((a, b) => a - b));
    // Effects too: every key ends at its last step.
    const { rows } = await stack.db.pool.query<{ description: string }>(
      'SELECT description FROM pattern_templates WHERE id = ANY($1::uuid[])',
      [keys],
    );
    expect(rows.map((r) => r.description)).toEqual(keys.map(() => `step ${steps}`));
    // And keys did overlap: across the partition, results are not in offset order.
    const all = parsed.map((r) => Number(r.result.metadata.source?.offset));
    const inversions = all.filter((o, i) => i > 0 && o < (all[i - 1] as number)).length;
    expect(inversions).toBeGreaterThan(0);
  });
});

describe('lanes', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await createStack({ partitions: 3 });
    // A small read budget, so that the search burst queues in its lane for several seconds.
    await stack.worker({ WORKER_READS_CONCURRENCY: '1', DB_POOL_MAX: '8' });
  });
  afterAll(async () => stack.close());

  it('keep a usage stream flowing through a search burst', async () => {
    const storage = new NodePatternStorageEffect(stack.db.pool);
    const ids = Array.from({ length: 20 }, () => randomUUID());
    for (const [i, id] of ids.entries()) {
      await storage.executeEffect({
        operation: 'insert',
        data: { ...pattern(`Lane${i}`, id), description: 'async database writer' },
      });
    }
    const searches = 3_000;
    await stack.producer.send({
      topic: stack.names.request('pattern.search.request'),
      messages: Array.from({ length: searches }, (_, i) => ({
        value: JSON.stringify({ search_query: `async database ${i % 7}`, limit: 20 }),
      })),
    });
    const usage = 600;
    await stack.producer.send({
      topic: stack.names.request('pattern.usage'),
      messages: Array.from({ length: usage }, (_, i) => ({
        key: ids[i % ids.length] as string,
        value: JSON.stringify({ pattern_id: ids[i % ids.length], usage_data: { success: true } }),
      })),
    });
    await stack.results.waitForCount(stack.names.result('pattern.usage'), usage, 60_000);
    const answeredSearches = stack.results.on(stack.names.result('pattern.search.request')).length;
    // The usage stream did not wait for the searches queued ahead of it in the reads lane.
    expect(answeredSearches).toBeLessThan(searches / 2);
    await stack.results.waitForCount(stack.names.result('pattern.search.request'), searches, 90_000);
  });
});

describe('bounded retries', () => {
  let stack: Stack;
  let metricsText: () => Promise<string>;
  beforeAll(async () => {
    stack = await createStack({ partitions: 1 });
    const worker = await stack.worker({ WORKER_FAULT_THROW_ON: 'PoisonPill', WORKER_MAX_ATTEMPTS: '3' });
    metricsText = async () => (await fetch(`http://127.0.0.1:${worker.port}/metrics`)).text();
  });
  afterAll(async () => stack.close());

  it('answers a message that keeps failing with INTERNAL after WORKER_MAX_ATTEMPTS, dead-letters it, and moves on', async () => {
    const [a, poison, b] = [randomUUID(), randomUUID(), randomUUID()];
    await stack.producer.send({
      topic: stack.names.request('pattern.insert'),
      messages: [
        {
          key: 'k',
          value: JSON.stringify({ correlation_id: a, data: pattern('BeforePoison', randomUUID()) }),
        },
        {
          key: 'k',
          value: JSON.stringify({ correlation_id: poison, data: pattern('PoisonPill', randomUUID()) }),
        },
        {
          key: 'k',
          value: JSON.stringify({ correlation_id: b, data: pattern('AfterPoison', randomUUID()) }),
        },
      ],
    });
    const results = await stack.results.waitForCount(stack.names.result('pattern.insert'), 3, 30_000);
    const parsed = results.map((m) => m.json<ModelResult>());
    expect(parsed.map((r) => [r.metadata.correlation_id, r.success])).toEqual([
      [a, true],
      [poison, false],
      [b, true],
    ]);
    expect(parsed[1]?.error).toMatchObject({
      code: 'INTERNAL',
      details: { attempts: 3, error_class: 'TypeError' },
    });
    const [dead] = await stack.results.waitForCount(stack.names.dlq('pattern.insert'), 1);
    expect(dead?.headers['kafka_dlt-exception-fqcn']?.toString()).toBe('INTERNAL');
    expect(dead?.headers['kafka_dlt-exception-cause-fqcn']?.toString()).toBe('TypeError');
    expect(readBigEndian(dead?.headers.kafka_deliveryAttempt as Buffer)).toBe(3);
    expect(readBigEndian(dead?.headers['kafka_dlt-original-offset'] as Buffer)).toBe(1);
    const { rows } = await stack.db.pool.query<{ pattern_name: string }>(
      'SELECT pattern_name FROM pattern_templates',
    );
    expect(rows.map((r) => r.pattern_name).sort()).toEqual(['AfterPoison', 'BeforePoison']);
    const text = await metricsText();
    expect(text).toMatch(/pattern_worker_retries_total\{[^}]*pattern_retry_kind="permanent"[^}]*\} 2/);
  });
});
