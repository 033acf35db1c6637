// Scenario 5: a slow database. The worker runs with a 400 ms statement timeout while the test holds row
// locks on the patterns its usage events must update, for 1.5 s at a time. Those statements time out
// (57014) and are retried within a budget of tries sized for such lock waits, and in the end nothing is
// lost, doubled or dead-lettered. A statement that times out every time (a lock that is never released)
// is given up on after its tries and dead-lettered, and the other patterns' events keep flowing.
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import type { ModelResult } from '../../src/contracts/results.ts';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { lockTables } from '../support/database.ts';
import { createStackRetrying, eventually } from '../support/faults.ts';
import type { Stack } from '../support/stack.ts';
import { produce, reportFigures, ResultTracker, Workload } from '../support/workload.ts';

vi.setConfig({ testTimeout: 180_000 });

let stack: Stack;
beforeAll(async () => {
  stack = await createStackRetrying({ partitions: 3 });
});
afterAll(async () => stack?.close());

/** Holds FOR UPDATE locks on the given patterns for `ms`, in a transaction of its own. */
async function holdLocks(url: string, ids: string[], ms: number): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query('BEGIN');
    await client.query('SELECT id FROM pattern_templates WHERE id = ANY($1::uuid[]) FOR UPDATE', [ids]);
    await new Promise((r) => setTimeout(r, ms));
    await client.query('COMMIT');
  } finally {
    await client.end();
  }
}

it('retries statements that hit the statement timeout, and loses nothing', async () => {
  const started = Date.now();
  const workload = new Workload({ patterns: 250, usagePerPattern: 6, relationships: 100, searches: 150 });
  const tracker = new ResultTracker(stack.results);
  // Timeouts get bounded tries: 30 cover the 5 lock periods of this test with room to spare.
  const worker = await stack.worker({
    DB_STATEMENT_TIMEOUT_MS: '400',
    WORKER_RETRY_MAX_MS: '800',
    WORKER_MAX_ATTEMPTS: '30',
  });
  await produce(stack.producer, stack.names, workload.inserts);
  await tracker.waitAnswered(workload.inserts, 60_000);

  const flowing = produce(stack.producer, stack.names, workload.followUps, { chunk: 50, pauseMs: 250 });
  await eventually(() => tracker.missing(workload.followUps.slice(0, 50)).length === 0, 30_000, 'flow');
  let locks = 0;
  for (let i = 0; i < 5; i++) {
    // Every pattern: whatever partition is busy, its next statement touching a pattern must wait.
    await holdLocks(stack.db.url, workload.patternIds, 1_500);
    locks++;
    await new Promise((r) => setTimeout(r, 300));
  }
  await flowing;
  await tracker.waitAnswered(workload.all, 90_000);

  const timeouts = (worker.output().match(/statement timeout/g) ?? []).length;
  const figures = await workload.check(stack.db.pool, tracker, stack.names);
  await reportFigures('slow-database', {
    faults: timeouts,
    lock_periods: locks,
    statement_timeouts_retried: timeouts,
    ...figures,
    duration_s: Math.round((Date.now() - started) / 1000),
  });
  expect(timeouts).toBeGreaterThan(0);
  expect(worker.child.exitCode).toBeNull();
  expect(figures.problems).toEqual([]);
  expect({ lost: figures.lost, doubled: figures.doubled, answered: figures.answered }).toEqual({
    lost: 0,
    doubled: 0,
    answered: workload.size,
  });
  expect(await worker.stop('SIGTERM')).toBe(0);
});

it('gives up on a statement that always times out after its tries, dead-letters it, and moves on', async () => {
  const [stuck, free] = [randomUUID(), randomUUID()];
  for (const [id, name] of [
    [stuck, 'LockedForEver'],
    [free, 'Free'],
  ] as const) {
    await stack.db.pool.query(
      `INSERT INTO pattern_templates (id, pattern_name, pattern_type, language) VALUES ($1, $2, 'code', 'go')`,
      [id, name],
    );
  }
  const lock = new pg.Client({ connectionString: stack.db.url });
  await lock.connect();
  await lock.query('BEGIN');
  await lock.query('SELECT id FROM pattern_templates WHERE id = $1 FOR UPDATE', [stuck]);
  const worker = await stack.worker({
    DB_STATEMENT_TIMEOUT_MS: '300',
    WORKER_RETRY_MAX_MS: '400',
    WORKER_MAX_ATTEMPTS: '3',
  });
  try {
    const [stuckEvent, freeEvent] = [randomUUID(), randomUUID()];
    await stack.send('pattern.usage', [
      {
        key: stuck,
        value: JSON.stringify({
          correlation_id: stuckEvent,
          pattern_id: stuck,
          usage_data: { success: true },
        }),
      },
      {
        key: free,
        value: JSON.stringify({ correlation_id: freeEvent, pattern_id: free, usage_data: { success: true } }),
      },
    ]);
    const topic = stack.names.result('pattern.usage');
    const answer = async (cid: string) =>
      (
        await stack.results.waitFor(
          (all) =>
            all.some((m) => m.topic === topic && m.json<ModelResult>().metadata.correlation_id === cid),
          30_000,
          `the result of ${cid}`,
        )
      )
        .filter((m) => m.topic === topic)
        .map((m) => m.json<ModelResult>())
        .find((r) => r.metadata.correlation_id === cid);
    expect((await answer(freeEvent))?.success).toBe(true);
    expect((await answer(stuckEvent))?.error).toMatchObject({
      code: 'INTERNAL',
      details: { attempts: 3, error_class: 'StatementTimeout' },
    });
    const dead = await stack.results.waitFor(
      (all) => all.some((m) => m.topic === stack.names.dlq('pattern.usage')),
      10_000,
      'the dead letter',
    );
    const letter = dead.find((m) => m.topic === stack.names.dlq('pattern.usage'));
    expect(letter?.headers['kafka_dlt-exception-cause-fqcn']?.toString()).toBe('StatementTimeout');
  } finally {
    await lock.query('ROLLBACK');
    await lock.end();
  }
  const { rows } = await stack.db.pool.query<{ id: string; usage_count: number }>(
    'SELECT id, usage_count FROM pattern_templates WHERE id = ANY($1::uuid[])',
    [[stuck, free]],
  );
  expect(Object.fromEntries(rows.map((r) => [r.id, Number(r.usage_count)]))).toEqual({
    [stuck]: 0,
    [free]: 1,
  });
  expect(await worker.stop('SIGTERM')).toBe(0);
});

it('gives a read that times out two tries, and runs the reads behind it in the gap between them', async () => {
  const worker = await stack.worker({
    DB_ANALYTICS_STATEMENT_TIMEOUT_MS: '300',
    WORKER_ANALYTICS_CONCURRENCY: '1',
    WORKER_MAX_ATTEMPTS: '5',
    WORKER_RETRY_INITIAL_MS: '3000',
    WORKER_RETRY_MAX_MS: '3000',
  });
  const pattern = randomUUID();
  await stack.db.pool.query(
    `INSERT INTO pattern_templates (id, pattern_name, pattern_type, language) VALUES ($1, 'Cheap', 'code', 'go')`,
    [pattern],
  );
  // Global usage trends read the hourly rollup, which this lock keeps from every reader until the end.
  const lock = await lockTables(stack.db.url, ['usage_global_hourly']);
  const slow = randomUUID();
  const cheap = [randomUUID(), randomUUID(), randomUUID()];
  const topic = stack.names.result('pattern.analytics.compute');
  const answers = new Map<string, { at: number; result: ModelResult }>();
  const sentAt = Date.now();
  try {
    await stack.send('pattern.analytics.compute', [
      {
        key: 'slow',
        partition: 0,
        value: JSON.stringify({ correlation_id: slow, operation: 'get_usage_trends' }),
      },
      // Behind it in its own partition, and in the others.
      ...cheap.map((correlation_id, i) => ({
        key: `cheap-${i}`,
        partition: i,
        value: JSON.stringify({ correlation_id, operation: 'get_effectiveness', pattern_id: pattern }),
      })),
    ]);
    const answered = (cids: string[], what: string) =>
      stack.results.waitFor(
        (all) => {
          for (const m of all) {
            if (m.topic !== topic) continue;
            const result = m.json<ModelResult>();
            const cid = String(result.metadata.correlation_id);
            if (!answers.has(cid)) answers.set(cid, { at: Date.now(), result });
          }
          return cids.every((c) => answers.has(c));
        },
        60_000,
        what,
      );
    await answered(cheap, 'the cheap reads');
    // While the slow read waits for its second try, the operator sees its partition held: the lag counts
    // it, and how long it has held the commit point.
    expect(answers.has(slow)).toBe(false);
    const partition0 = [
      `messaging_destination_name="${stack.names.request('pattern.analytics.compute')}"`,
      'messaging_destination_partition_id="0"',
    ];
    const gauge = (text: string, name: string) =>
      text
        .split('\n')
        .filter((l) => l.startsWith(`${name}{`) && partition0.every((x) => l.includes(x)))
        .map((l) => Number(l.slice(l.lastIndexOf(' ') + 1)));
    await vi.waitFor(
      async () => {
        const text = await (await fetch(`http://127.0.0.1:${worker.port}/metrics`)).text();
        expect(gauge(text, 'pattern_worker_partition_waiting')[0]).toBeGreaterThan(0.5);
        // The slow read and the cheap one done behind it, in partition 0.
        expect(gauge(text, 'messaging_kafka_consumer_lag')[0]).toBe(2);
      },
      { timeout: 2_000, interval: 100 },
    );
    await answered([slow], 'the slow read');
  } finally {
    await lock.release();
  }
  // The cheap reads ran in the 3 s gap after the first try, not after the last.
  for (const c of cheap) {
    expect(answers.get(c)?.result.success).toBe(true);
    expect((answers.get(c)?.at ?? Infinity) - sentAt).toBeLessThan(2_500);
  }
  expect(answers.get(slow)?.result.error).toMatchObject({
    code: 'INTERNAL',
    message: expect.stringContaining('ran past the database') as unknown,
    details: { attempts: 2, error_class: 'StatementTimeout' },
  });
  expect((answers.get(slow)?.at ?? 0) - sentAt).toBeLessThan(5_000);
  expect(await worker.stop('SIGTERM')).toBe(0);
});

/** Sends one search and waits for its result on the result topic. */
async function searchAnswer(
  cid: string,
  searchQuery: string,
  headers: Record<string, string> = {},
): Promise<ModelResult | undefined> {
  const topic = stack.names.result('pattern.search.request');
  await stack.send('pattern.search.request', [
    {
      key: cid,
      value: JSON.stringify({ correlation_id: cid, operation: 'search', search_query: searchQuery }),
      headers,
    },
  ]);
  const all = await stack.results.waitFor(
    (msgs) => msgs.some((m) => m.topic === topic && m.json<ModelResult>().metadata.correlation_id === cid),
    20_000,
    `the result of search ${cid}`,
  );
  return all
    .filter((m) => m.topic === topic)
    .map((m) => m.json<ModelResult>())
    .find((r) => r.metadata.correlation_id === cid);
}

it('cancels a search in the database when its caller deadline passes while it waits', async () => {
  const worker = await stack.worker({});
  const lock = await lockTables(stack.db.url, ['pattern_templates']);
  const sentAt = Date.now();
  let answeredAt: number;
  let result: ModelResult | undefined;
  try {
    result = await searchAnswer(randomUUID(), 'retry backoff', {
      'pattern-deadline-ms': String(Date.now() + 1_500),
    });
    answeredAt = Date.now();
    // Nothing of the worker's still waits on the lock: the statement was cancelled, not abandoned.
    const { rows } = await stack.db.pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_stat_activity
        WHERE datname = current_database() AND wait_event_type = 'Lock' AND query ILIKE '%pattern_templates%'`,
    );
    expect(rows[0]?.n).toBe(0);
  } finally {
    await lock.release();
  }
  // Answered at its deadline, not at the 30 s statement timeout, and neither retried nor dead-lettered.
  expect(result?.error).toMatchObject({
    code: 'DEADLINE_EXCEEDED',
    message: expect.stringContaining('cancelled in the database') as unknown,
  });
  expect(answeredAt - sentAt).toBeLessThan(6_000);
  expect(stack.results.on(stack.names.dlq('pattern.search.request'))).toEqual([]);
  const text = await (await fetch(`http://127.0.0.1:${worker.port}/metrics`)).text();
  expect(text).toMatch(/pattern_worker_deadline_exceeded_total\{[^}]*pattern_operation="search"[^}]*\} 1/);
  expect(await worker.stop('SIGTERM')).toBe(0);
});

it('cancels a search that runs past DB_READS_STATEMENT_TIMEOUT_MS, and gives it two tries', async () => {
  const worker = await stack.worker({ DB_READS_STATEMENT_TIMEOUT_MS: '400', WORKER_RETRY_MAX_MS: '500' });
  const lock = await lockTables(stack.db.url, ['pattern_templates']);
  const sentAt = Date.now();
  let result: ModelResult | undefined;
  try {
    result = await searchAnswer(randomUUID(), 'lock');
  } finally {
    await lock.release();
  }
  // Not the 30 s of the connections' statement_timeout, twice.
  expect(Date.now() - sentAt).toBeLessThan(6_000);
  expect(result?.error).toMatchObject({
    code: 'INTERNAL',
    message: expect.stringContaining('DB_READS_STATEMENT_TIMEOUT_MS') as unknown,
    details: { attempts: 2, error_class: 'StatementTimeout' },
  });
  expect(await worker.stop('SIGTERM')).toBe(0);
});
