// Operating the worker with `patterns dlq` and `patterns status`, against the real broker and database:
// dead letters of real bad requests are listed, filtered and shown decoded; a redrive of usage events
// whose pattern was missing applies them once even when run twice, and --dry-run changes nothing;
// status reports members, lag while the worker is stopped and zero after it drains, and fails when a
// topic is missing.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { DeadLetter } from '../../src/messaging/operations/dead-letters.ts';
import type { WorkerStatus } from '../../src/messaging/operations/status.ts';
import { patterns } from '../support/cli.ts';
import { eventually } from '../support/faults.ts';
import { createStack, type Stack } from '../support/stack.ts';
import type { WorkerProcess } from '../support/worker-process.ts';

vi.setConfig({ testTimeout: 120_000 });

interface Listed {
  dead_letters: DeadLetter[];
  counts: Record<string, number>;
  total: number;
}

describe('patterns dlq and patterns status', () => {
  let stack: Stack;
  let worker: WorkerProcess;
  const missingPattern = randomUUID();
  const usageCid = randomUUID();
  const nestId = `nest-${randomUUID()}`;
  const dlq = async (...args: string[]) => patterns(stack.env, 'dlq', ...args);
  const list = async (...args: string[]) => {
    const run = await dlq('list', '--json', ...args);
    expect(run.code, run.stderr).toBe(0);
    return JSON.parse(run.stdout) as Listed;
  };
  const usageEvents = async () =>
    Number(
      (
        await stack.db.pool.query<{ n: string }>(
          'SELECT count(*) AS n FROM pattern_usage_events WHERE pattern_id = $1',
          [missingPattern],
        )
      ).rows[0]?.n,
    );

  beforeAll(async () => {
    stack = await createStack({ partitions: 2 });
    worker = await stack.worker();
    // Four real bad requests: two usage events of a pattern that does not exist yet (one with a
    // correlation id, one with none), an invalid insert from a NestJS-style client, undecodable bytes.
    const usage = { pattern_id: missingPattern, usage_data: { success: true } };
    await stack.send('pattern.usage', [
      {
        key: missingPattern,
        value: JSON.stringify({ operation: 'record_usage', correlation_id: usageCid, ...usage }),
      },
      { key: missingPattern, value: JSON.stringify({ operation: 'record_usage', ...usage }) },
    ]);
    await stack.producer.send({
      topic: stack.names.request('pattern.insert'),
      messages: [
        {
          value: JSON.stringify({
            operation: 'insert',
            data: { pattern_name: '', pattern_type: 'x', language: 'go' },
          }),
          headers: { kafka_correlationId: nestId },
        },
      ],
    });
    await stack.send('pattern.search.request', [{ value: Buffer.from([0xff, 0xfe, 0x00]) }]);
    await stack.results.waitFor((all) => all.filter((m) => m.topic.endsWith('.dlq')).length >= 4, 30_000);
  });
  afterAll(async () => stack?.close());

  it('lists dead letters with their codes and filters them by topic, code, correlation id and time', async () => {
    const all = await list();
    expect(all.total).toBe(4);
    expect(all.counts).toEqual({ INVALID_REFERENCE: 2, VALIDATION_ERROR: 2 });
    const usage = all.dead_letters.filter((l) => l.original.topic === stack.names.request('pattern.usage'));
    expect(usage).toHaveLength(2);
    expect(usage.map((l) => l.original.offset).sort()).toEqual(['0', '1']);
    expect(usage[0]).toMatchObject({
      code: 'INVALID_REFERENCE',
      consumerGroup: `${stack.env.KAFKA_GROUP_ID}.writes`,
    });

    expect((await list('--topic', 'pattern.usage')).total).toBe(2);
    expect((await list('--code', 'validation_error')).counts).toEqual({ VALIDATION_ERROR: 2 });
    const byCid = await list('--correlation-id', usageCid);
    expect(byCid.dead_letters.map((l) => l.correlationId)).toEqual([usageCid]);
    expect((await list('--correlation-id', nestId)).dead_letters[0]?.original.topic).toBe(
      stack.names.request('pattern.insert'),
    );
    expect((await list('--since', new Date(Date.now() + 60_000).toISOString())).total).toBe(0);
    expect((await list('--until', '2020-01-01T00:00:00Z')).total).toBe(0);

    const bad = await dlq('list', '--code', 'NOPE');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/unknown code NOPE; codes are VALIDATION_ERROR/);
  });

  it('shows one dead letter whole, with the binary headers as numbers and the value as JSON', async () => {
    const [letter] = (await list('--correlation-id', usageCid)).dead_letters;
    const shown = await dlq('show', letter!.ref, '--json');
    expect(shown.code, shown.stderr).toBe(0);
    const whole = JSON.parse(shown.stdout) as DeadLetter & {
      headers: Record<string, unknown>;
      value: unknown;
    };
    expect(whole.headers).toMatchObject({
      'kafka_dlt-original-topic': stack.names.request('pattern.usage'),
      'kafka_dlt-original-partition': letter!.original.partition,
      'kafka_dlt-original-offset': Number(letter!.original.offset),
      'kafka_dlt-exception-fqcn': 'INVALID_REFERENCE',
    });
    expect(typeof whole.headers['kafka_dlt-original-timestamp']).toBe('number');
    expect(whole.value).toMatchObject({ operation: 'record_usage', correlation_id: usageCid });

    const missing = await dlq('show', `${letter!.topic}:${letter!.partition}:99999`, '--json');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/no message at .* offset 99999/);
    expect((await dlq('show', 'not-a-ref')).stderr).toMatch(/<dlq-topic>:<partition>:<offset>/);
  });

  it('redrives fixed usage events once, even when run twice; --dry-run changes nothing', async () => {
    const admin = stack.kafka.admin();
    await admin.connect();
    const endOf = async () =>
      (await admin.fetchTopicOffsets(stack.names.request('pattern.usage'))).reduce(
        (s, p) => s + Number(p.high),
        0,
      );
    try {
      const before = await endOf();
      const dry = await dlq('redrive', '--topic', 'pattern.usage', '--dry-run', '--json');
      expect(dry.code, dry.stderr).toBe(0);
      expect(JSON.parse(dry.stdout)).toMatchObject({
        dry_run: true,
        redriven: 0,
        would_redrive: 2,
        skipped: [],
      });
      expect(await endOf()).toBe(before);

      // Fix the cause: the pattern exists now.
      await stack.send('pattern.insert', [
        {
          key: missingPattern,
          value: JSON.stringify({
            operation: 'insert',
            data: {
              pattern_id: missingPattern,
              pattern_name: 'NowThere',
              pattern_type: 'code',
              language: 'go',
            },
          }),
        },
      ]);
      await stack.results.waitFor(
        (all) =>
          all.some(
            (m) => m.topic.endsWith('pattern.insert.result') && m.json<{ success: boolean }>().success,
          ),
        20_000,
      );
      for (let run = 1; run <= 2; run++) {
        const redrive = await dlq('redrive', '--topic', 'pattern.usage', '--code', 'INVALID_REFERENCE');
        expect(redrive.code, redrive.stderr).toBe(0);
        // Not a terminal, so JSON: the same figures as the "redriven N, skipped M" line.
        expect(JSON.parse(redrive.stdout)).toMatchObject({ redriven: 2, skipped: [] });
      }
      expect(await endOf()).toBe(before + 4);
      // All four redriven messages answered: two applied, two duplicates of them.
      const usageResults = () =>
        stack.results
          .on(stack.names.result('pattern.usage'))
          .map((m) => m.json<{ success: boolean; metadata: { duplicate?: boolean } }>())
          .filter((r) => r.success);
      await eventually(() => usageResults().length >= 4, 30_000, 'four usage results');
      expect(usageResults().filter((r) => r.metadata.duplicate === true)).toHaveLength(2);
      expect(await usageEvents()).toBe(2);
      // Nothing went back to the dead-letter topic.
      expect((await list('--topic', 'pattern.usage')).total).toBe(2);
    } finally {
      await admin.disconnect();
    }
  });

  it('status shows members and lanes, the lag of a stopped worker and zero after it drains', async () => {
    const status = async () => {
      const run = await patterns(stack.env, 'status', '--json');
      return { code: run.code, status: JSON.parse(run.stdout) as WorkerStatus, stderr: run.stderr };
    };
    await eventually(async () => (await status()).status.totalLag === 0, 30_000, 'the worker to drain');
    const running = await status();
    expect(running.code, running.status.problems.join('\n')).toBe(0);
    expect(running.status.groups.map((g) => [g.id, g.members.length])).toEqual(
      ['writes', 'reads', 'analytics'].map((lane) => [`${stack.env.KAFKA_GROUP_ID}.${lane}`, 1]),
    );
    expect(new Set(running.status.groups.flatMap((g) => g.members.map((m) => m.lane)))).toEqual(
      new Set(['writes', 'reads', 'analytics']),
    );
    expect(running.status.deadLettersLastHour).toEqual({
      total: 4,
      byCode: { INVALID_REFERENCE: 2, VALIDATION_ERROR: 2 },
    });
    expect(running.status.topics.every((t) => t.exists)).toBe(true);

    await worker.stop('SIGTERM', 10_000);
    const backlog = Array.from({ length: 5 }, (_, i) => ({
      value: JSON.stringify({
        operation: 'insert',
        data: { pattern_name: `Backlog${i}`, pattern_type: 'code', language: 'go' },
      }),
    }));
    await stack.send('pattern.insert', backlog);
    const stopped = await status();
    expect(stopped.code).toBe(1);
    expect(stopped.status.groups.flatMap((g) => g.members)).toEqual([]);
    expect(stopped.status.lagByTopic[stack.names.request('pattern.insert')]).toBe(5);
    expect(stopped.status.totalLag).toBe(5);
    expect(stopped.status.problems.join('\n')).toMatch(/has no members/);

    worker = await stack.worker();
    await eventually(async () => (await status()).status.totalLag === 0, 30_000, 'the backlog to drain');
    expect((await status()).code).toBe(0);

    const admin = stack.kafka.admin();
    await admin.connect();
    await admin.deleteTopics({ topics: [stack.names.dlq('pattern.analytics.compute')] });
    await admin.disconnect();
    await eventually(async () => (await status()).code === 1, 20_000, 'status to notice the missing topic');
    const missing = await status();
    expect(missing.status.problems).toEqual([
      `topic ${stack.names.dlq('pattern.analytics.compute')} is missing (create it: patterns topics create)`,
    ]);
  });
});
