// WORKER_LANES: searches served by processes of their own, beside processes that run the other lanes
// (README "Searches in processes of their own"), against the real broker and database.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { ModelResult } from '../../src/contracts/results.ts';
import type { CollectedMessage } from '../support/kafka.ts';
import { createStack, type Stack } from '../support/stack.ts';

vi.setConfig({ testTimeout: 90_000 });

const cidOf = (m: CollectedMessage) => m.json<ModelResult<unknown>>().metadata?.correlation_id;

describe('lanes split across processes (WORKER_LANES)', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await createStack();
  }, 60_000);
  afterAll(async () => stack.close());

  it('a process of reads and analytics answers searches and leaves inserts to the process that runs the writes lane', async () => {
    const reads = await stack.worker({ WORKER_LANES: 'reads,analytics' });
    expect((await reads.readyz()).status).toBe(200);
    const search = randomUUID();
    const insert = randomUUID();
    const patternId = randomUUID();
    await stack.send('pattern.insert', [
      {
        operation: 'insert',
        correlation_id: insert,
        data: {
          pattern_id: patternId,
          pattern_name: 'SplitLaneWriter',
          pattern_type: 'code',
          language: 'python',
        },
      },
    ]);
    await stack.send('pattern.search.request', [
      { operation: 'search', correlation_id: search, search_query: 'split lane' },
    ]);
    const searchResults = stack.names.result('pattern.search.request');
    const insertResults = stack.names.result('pattern.insert');
    const [answer] = await stack.results.waitForCount(searchResults, 1);
    expect(answer && cidOf(answer)).toBe(search);
    expect(answer?.json<ModelResult<unknown>>().success).toBe(true);
    // Nobody runs the writes lane yet: the insert waits on its topic, unapplied.
    await new Promise((r) => setTimeout(r, 1_500));
    expect(stack.results.on(insertResults)).toEqual([]);
    const stored = () =>
      stack.db.pool
        .query('SELECT 1 FROM pattern_templates WHERE id = $1', [patternId])
        .then((r) => r.rowCount);
    expect(await stored()).toBe(0);

    await stack.worker({ WORKER_LANES: 'writes' });
    const [applied] = await stack.results.waitForCount(insertResults, 1);
    expect(applied && cidOf(applied)).toBe(insert);
    expect(await stored()).toBe(1);
    // The search was answered once, by the reads-only process; the new process took no search partitions.
    const again = randomUUID();
    await stack.send('pattern.search.request', [
      { operation: 'search', correlation_id: again, search_query: 'split lane writer' },
    ]);
    const answers = await stack.results.waitForCount(searchResults, 2);
    expect(answers.map(cidOf)).toEqual([search, again]);
  });
});
