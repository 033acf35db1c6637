// Late-reply pickup through Kafka: a caller times out on a write held up by a slow database (a row lock
// held by another transaction), then picks its outcome up with PatternClient.resultOf and with
// `patterns result`, and gets the data the worker published, byte for byte.
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { PatternClient, RequestTimeoutError } from '../../src/client/index.ts';
import type { StoredResultLookup } from '../../src/contracts/result-data.ts';
import type { ModelResult } from '../../src/contracts/results.ts';
import { patterns } from '../support/cli.ts';
import { eventually } from '../support/faults.ts';
import { brokers, type CollectedMessage } from '../support/kafka.ts';
import { createStack, type Stack } from '../support/stack.ts';

vi.setConfig({ testTimeout: 90_000 });

const correlationOf = (m: CollectedMessage) => m.headers.kafka_correlationId?.toString();

describe('late-reply pickup', () => {
  let stack: Stack;
  let client: PatternClient;
  beforeAll(async () => {
    stack = await createStack({ reply: true });
    await stack.worker();
    client = await new PatternClient({ brokers: brokers(), topicPrefix: stack.names.prefix }).connect();
  });
  afterAll(async () => {
    await client?.close();
    await stack?.close();
  });

  it('a caller that timed out on a slow write picks its result up with resultOf and the CLI', async () => {
    const inserted = await client.insert({
      data: { pattern_name: 'LateWrite', pattern_type: 'code', language: 'go' },
    });
    const patternId = inserted.data?.pattern_id as string;

    // Another transaction holds the pattern's row: the worker's update waits for it.
    const locker = new pg.Client({ connectionString: stack.db.url });
    await locker.connect();
    await locker.query('BEGIN');
    await locker.query('SELECT id FROM pattern_templates WHERE id = $1 FOR UPDATE', [patternId]);
    const timedOut = await client
      .update({ pattern_id: patternId, data: { description: 'applied late' } }, { timeoutMs: 1_500 })
      .then(
        () => undefined,
        (err: unknown) => err,
      );
    expect(timedOut).toBeInstanceOf(RequestTimeoutError);
    const { correlationId, message } = timedOut as RequestTimeoutError;
    expect(message).toContain(`client.resultOf('${correlationId}')`);
    expect(message).toContain(`patterns result ${correlationId}`);

    // Still waiting for the lock: nothing is recorded yet, and the answer says so.
    const early = await client.resultOf(correlationId);
    expect(early.data).toMatchObject({ status: 'unknown' });

    await locker.query('COMMIT');
    await locker.end();
    // The late reply reached the reply topic after the caller had given up on it.
    const [late] = await stack.results
      .waitFor((all) => all.some((m) => correlationOf(m) === correlationId), 30_000)
      .then((all) => all.filter((m) => correlationOf(m) === correlationId));
    const published = late!.json<ModelResult>();

    let picked: StoredResultLookup | null = null;
    await eventually(
      async () => {
        picked = (await client.resultOf(correlationId)).data;
        return picked?.status === 'applied';
      },
      20_000,
      'the update is recorded',
    );
    const applied = picked as unknown as Extract<StoredResultLookup, { status: 'applied' }>;
    expect(applied).toMatchObject({ operation: 'update', result: { success: true, error: null } });
    expect(JSON.stringify(applied.result.data)).toBe(JSON.stringify(published.data));
    expect(applied.result.data).toMatchObject({ pattern_id: patternId, fields_updated: ['description'] });

    const cli = await patterns(stack.env, 'result', correlationId);
    expect(cli.code, cli.stderr).toBe(0);
    const printed = JSON.parse(cli.stdout) as ModelResult<StoredResultLookup>;
    expect(printed.data).toEqual(applied);

    const read = await patterns(stack.env, 'result', randomUUID(), '--operation', 'search');
    expect(read.code).toBe(4);
    expect(read.stderr).toMatch(/not_stored: search is a read/);
    const none = await patterns(stack.env, 'result', randomUUID());
    expect(none.code).toBe(4);
    expect(none.stderr).toMatch(/unknown: nothing is recorded/);
  });
});
