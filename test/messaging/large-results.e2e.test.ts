// Results the broker would refuse never stall a partition: a unit's results are sent in chunks below
// message.max.bytes, and a single result that is too large becomes a PAYLOAD_TOO_LARGE error.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { ModelResult } from '../../src/contracts/results.ts';
import { NodePatternStorageEffect } from '../../src/nodes/index.ts';
import { createStack, type Stack } from '../support/stack.ts';

vi.setConfig({ testTimeout: 90_000 });

describe('large results through the worker', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await createStack({ partitions: 1 });
  });
  afterAll(async () => stack.close());

  it('publishes one unit of 3,000 usage results (over 1 MiB together) without stalling', async () => {
    // The pattern goes in directly, and every event is on the topic before the worker starts, so that
    // they arrive in one fetch and make one unit whose results are over 1 MiB together.
    const id = randomUUID();
    await new NodePatternStorageEffect(stack.db.pool).executeEffect({
      operation: 'insert',
      data: { pattern_id: id, pattern_name: 'Busy', pattern_type: 'code', language: 'go' },
    } as never);
    const padding = 'p'.repeat(300); // bulks up each result's correlation header and key
    // Sent in several requests: one request of them all would itself be over the broker's limit.
    for (let start = 0; start < 3000; start += 500) {
      await stack.send(
        'pattern.usage',
        Array.from({ length: 500 }, (_, j) => ({
          key: id,
          value: JSON.stringify({
            pattern_id: id,
            usage_data: { success: true, execution_time_ms: start + j },
          }),
          headers: { kafka_correlationId: `${padding}-${start + j}` },
        })),
      );
    }
    await stack.worker({ WORKER_BATCH_SIZE: '4000', WORKER_MAX_RESULT_BYTES: '20000' });
    const results = await stack.results.waitForCount(stack.names.result('pattern.usage'), 3000, 60_000);
    const bytes = results.reduce((sum, m) => sum + (m.value?.length ?? 0) + 300, 0);
    expect(bytes).toBeGreaterThan(1024 * 1024);
    expect(results.every((m) => m.json<ModelResult>().success)).toBe(true);
    const { rows } = await stack.db.pool.query<{ n: number }>(
      'SELECT usage_count AS n FROM pattern_templates WHERE id = $1',
      [id],
    );
    expect(rows[0]?.n).toBe(3000);
  });

  it('dead-letters a bad request at the size limit with its value: the dead-letter topic takes it', async () => {
    // Just under the broker's default message.max.bytes, so it fits the request topic; its dead letter
    // adds headers, and dead-letter topics are created with room for them.
    const value = `{"data": "${'z'.repeat(1_048_400 - 10)}`; // malformed: never closed
    expect(Buffer.byteLength(value)).toBe(1_048_400);
    await stack.send('pattern.insert', [{ value }]);
    const dead = await stack.results.waitFor(
      (all) => all.some((m) => m.topic === stack.names.dlq('pattern.insert')),
      30_000,
      'the dead letter',
    );
    const letter = dead.find((m) => m.topic === stack.names.dlq('pattern.insert'));
    expect(letter?.value?.length).toBe(Buffer.byteLength(value));
    expect(letter?.headers['kafka_dlt-exception-fqcn']?.toString()).toBe('VALIDATION_ERROR');
  });

  it('answers a result over WORKER_MAX_RESULT_BYTES with PAYLOAD_TOO_LARGE and a dead letter', async () => {
    await stack.send(
      'pattern.insert',
      Array.from({ length: 60 }, (_, i) => ({
        data: {
          pattern_name: `Wide${i}`,
          pattern_type: 'code',
          language: 'go',
          template_code: 'y'.repeat(500),
        },
      })),
    );
    // Counted by success: the malformed insert of the test before has its own (failed) result there.
    await stack.results.waitFor(
      (all) =>
        all.filter((m) => m.topic === stack.names.result('pattern.insert') && m.json<ModelResult>().success)
          .length >= 60,
      20_000,
      'the 60 inserts',
    );
    const cid = randomUUID();
    await stack.send('pattern.search.request', [{ operation: 'filter', correlation_id: cid, limit: 100 }]);
    const [answer] = await stack.results.waitForCount(stack.names.result('pattern.search.request'), 1);
    const result = answer?.json<ModelResult>();
    expect(result?.success).toBe(false);
    expect(result?.error?.code).toBe('PAYLOAD_TOO_LARGE');
    // Cut in the database before the page was read: how many of the 61 would fit.
    expect(result?.error?.message).toMatch(
      /^the first \d+ of the 61 patterns of this page fit in a result; .* ask for at most \d+ \(limit\)$/,
    );
    const [dead] = await stack.results.waitForCount(stack.names.dlq('pattern.search.request'), 1);
    expect(dead?.value?.toString()).toContain(cid); // the small request itself is kept
    // The partition moves on.
    await stack.send('pattern.search.request', [{ operation: 'filter', limit: 1 }]);
    await stack.results.waitForCount(stack.names.result('pattern.search.request'), 2);
  });
});
