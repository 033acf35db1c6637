// A topic that keeps CreateTime keeps whatever timestamp the producer sent: Kafka 4.4 stores -9e18 as it
// came. Event times come from those timestamps, so one that is not a time is refused by name, before
// anything is applied, and dead-lettered; the partition goes on.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { ModelResult } from '../../src/contracts/results.ts';
import { createStack, type Stack } from '../support/stack.ts';

vi.setConfig({ testTimeout: 90_000 });

describe('record timestamps that are not times, on a CreateTime topic', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await createStack({ partitions: 1 });
    // As an operator's own topic would be: the worker creates its request topics with LogAppendTime.
    const admin = stack.kafka.admin();
    await admin.connect();
    await admin.alterConfigs({
      validateOnly: false,
      resources: [
        {
          type: 2, // TOPIC
          name: stack.names.request('pattern.usage'),
          configEntries: [{ name: 'message.timestamp.type', value: 'CreateTime' }],
        },
      ],
    });
    await admin.disconnect();
  });
  afterAll(async () => stack.close());

  it('are refused by name and dead-lettered, and the valid usage after them is applied', async () => {
    await stack.worker();
    const id = randomUUID();
    await stack.send('pattern.insert', [
      {
        key: id,
        value: JSON.stringify({
          data: { pattern_id: id, pattern_name: 'Stamped', pattern_type: 'code', language: 'go' },
        }),
      },
    ]);
    await stack.results.waitForCount(stack.names.result('pattern.insert'), 1);
    const usage = (timestamp?: string) => ({
      key: id,
      ...(timestamp === undefined ? {} : { timestamp }),
      value: JSON.stringify({ pattern_id: id, usage_data: { success: true } }),
    });
    const stamps = ['-9000000000000000000', '-62135596800000', '-2'];
    // One request each: kafkajs computes a batch's timestamp deltas in doubles, which round these.
    for (const message of [...stamps.map((t) => usage(t)), usage()])
      await stack.send('pattern.usage', [message]);

    const results = await stack.results.waitForCount(stack.names.result('pattern.usage'), 4, 30_000);
    const answers = results.map((m) => m.json<ModelResult>());
    expect(answers.slice(0, 3).map((r) => [r.error?.code, r.error?.details])).toEqual(
      stamps.map((timestamp) => ['VALIDATION_ERROR', { field: 'timestamp', timestamp }]),
    );
    expect(answers[0]?.error?.message).toMatch(/not a time from 1970 to 9999.*LogAppendTime/);
    expect(answers[3]?.success).toBe(true);
    const dead = await stack.results.waitForCount(stack.names.dlq('pattern.usage'), 3);
    expect(dead.map((m) => m.headers['kafka_dlt-exception-fqcn']?.toString())).toEqual(
      Array(3).fill('VALIDATION_ERROR'),
    );
    const { rows } = await stack.db.pool.query<{ n: number }>(
      'SELECT usage_count AS n FROM pattern_templates WHERE id = $1',
      [id],
    );
    expect(rows[0]?.n).toBe(1);
  });
});
