// The lane engine in-process, over fakes of its work, publisher and consumer: concurrency budget, order
// per key, pipelined publishing, commits never past a message whose effect or result is not done,
// pause and resume, retries, rebalances and draining. Random completion orders via fast-check.
import fc from 'fast-check';
import { engineSetup, flush, message, type Kind } from '../support/engine-fakes.ts';
import { describe, expect, it, vi } from 'vitest';
import type { InboundMessage } from '../../src/messaging/engine/records.ts';

describe('LaneEngine', () => {
  it('keeps at most `concurrency` units running, and runs different keys side by side', async () => {
    const { work, engine } = engineSetup({ concurrency: 2 });
    engine.accept('t', 0, [
      message(0, 0, 'write', 'a'),
      message(0, 1, 'write', 'b'),
      message(0, 2, 'write', 'c'),
    ]);
    await flush();
    expect(work.runs.map((r) => r.items.map((i) => i.key))).toEqual([['a'], ['b']]);
    work.succeed(0);
    await flush();
    expect(work.runs.map((r) => r.items.map((i) => i.key))).toEqual([['b'], ['c']]);
  });

  it('runs no more units than concurrencyNow allows (a lane yielding to another), and fills up when it rises', async () => {
    let allowed = 1;
    const { work, engine } = engineSetup({ concurrency: 4 }, () => allowed);
    engine.accept(
      't',
      0,
      ['a', 'b', 'c', 'd', 'e'].map((k, i) => message(0, i, 'write', k)),
    );
    await flush();
    expect(work.runs.map((r) => r.items.map((i) => i.key))).toEqual([['a']]);
    work.succeed(0);
    await flush();
    expect(work.runs.map((r) => r.items.map((i) => i.key))).toEqual([['b']]);
    // Above the settings' concurrency counts as the settings' concurrency; below 1 as 1.
    allowed = 10;
    engine.capacityChanged();
    await flush();
    expect(work.runs.map((r) => r.items.map((i) => i.key))).toEqual([['b'], ['c'], ['d'], ['e']]);
    allowed = 0;
    for (let i = 0; i < 4; i++) work.succeed(0);
    engine.accept(
      't',
      1,
      ['f', 'g'].map((k, i) => message(1, i, 'write', k)),
    );
    await flush();
    expect(work.runs.map((r) => r.items.map((i) => i.key))).toEqual([['f']]);
  });

  it('starts the next transaction before the previous results are acknowledged, and commits only after the acks', async () => {
    const { work, publisher, control, engine } = engineSetup();
    engine.accept('t', 0, [message(0, 0, 'write', 'a'), message(0, 1, 'write', 'a')], 2n);
    await flush();
    work.succeed(0);
    await flush();
    // The second write of key a runs while the first one's result waits for its ack.
    expect(work.runs).toHaveLength(1);
    expect(publisher.pending).toHaveLength(1);
    expect(control.committed(0)).toBe(-1n);
    work.succeed(0);
    await flush();
    expect(control.committed(0)).toBe(-1n);
    publisher.ack();
    await flush();
    expect(control.committed(0)).toBe(1n);
    publisher.ack();
    await flush();
    expect(control.committed(0)).toBe(2n);
    expect(publisher.order).toEqual(['a/0/0', 'a/0/1']);
  });

  it('pauses a partition whose buffer is full and resumes it below half', async () => {
    const { work, publisher, control, engine } = engineSetup({ maxBufferedMessages: 4, concurrency: 8 });
    engine.accept(
      't',
      0,
      [0, 1, 2, 3, 4].map((o) => message(0, o, 'read', '')),
    );
    await flush();
    expect(control.paused.has('t:0')).toBe(true);
    for (let i = 0; i < 2; i++) {
      work.succeed(0);
      await flush();
      publisher.ack();
      await flush();
    }
    expect(control.paused.has('t:0')).toBe(true); // 3 unfinished: not below half yet
    work.succeed(0);
    await flush();
    publisher.ack();
    await flush();
    expect(control.paused.has('t:0')).toBe(false);
  });

  it('pauses every receiving partition while the lane holds too many bytes, and resumes them all below half', async () => {
    // Each message counts its value, key and 64 bytes of overhead: about 70 bytes here.
    const { work, publisher, control, engine } = engineSetup({ maxBufferedBytes: 300, concurrency: 8 });
    engine.accept(
      't',
      0,
      [0, 1, 2].map((o) => message(0, o, 'read', '')),
    );
    engine.accept(
      't',
      1,
      [0, 1].map((o) => message(1, o, 'read', '')),
    );
    engine.accept(
      't',
      2,
      [0].map((o) => message(2, o, 'read', '')),
    );
    await flush();
    // 204 bytes after partition 0: under the bound; partitions 1 and 2 arrive over it.
    expect([...control.paused].sort()).toEqual(['t:1', 't:2']);
    while (work.runs.length > 0) {
      work.succeed(0);
      await flush();
      publisher.ack();
      await flush();
    }
    expect(control.paused.size).toBe(0);
    expect(control.resumes).toBe(2);
  });

  it('frees the buffer of units dropped at a rebalance, so fetching resumes', async () => {
    // A backoff long enough that no retry starts before the rebalance below.
    const { work, control, engine } = engineSetup({
      maxBufferedBytes: 150,
      concurrency: 8,
      backoff: { initialMs: 40, maxMs: 80 },
    });
    engine.accept(
      't',
      0,
      [0, 1, 2].map((o) => message(0, o, 'write', `k${o}`)),
      3n,
    );
    await flush();
    expect(control.paused.has('t:0')).toBe(true);
    const { RetryableError } = await import('../../src/contracts/errors.ts');
    // Every try fails transiently: the units wait to retry when the rebalance drops them.
    while (work.runs.length > 0) work.fail(0, new RetryableError('database unreachable'));
    await flush();
    engine.reassigned();
    expect(control.paused.has('t:0')).toBe(false);
    await new Promise((r) => setTimeout(r, 150));
    // Taken in again from the committed offset: under the bound, since nothing of before is counted.
    engine.accept('t', 0, [message(0, 0, 'write', 'k0')], 1n);
    await flush();
    expect(control.paused.has('t:0')).toBe(false);
  });

  it('retries a transient failure after backing the partition off, without counting attempts', async () => {
    const { work, publisher, control, engine, lifecycle } = engineSetup({ maxAttempts: 1 });
    const failures: (number | null)[] = [];
    lifecycle.on('unit.failed', ({ retryInMs, failure }) => {
      expect(failure.kind).toBe('transient');
      failures.push(retryInMs);
    });
    engine.accept('t', 0, [message(0, 0, 'write', 'a')], 1n);
    await flush();
    const { RetryableError } = await import('../../src/contracts/errors.ts');
    for (let i = 0; i < 3; i++) {
      work.fail(0, new RetryableError('database unreachable'));
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(failures).toHaveLength(3);
    expect(work.runs[0]?.unit.attempt).toBe(4);
    work.succeed(0);
    await flush();
    publisher.ack();
    await flush();
    expect(work.gaveUp).toHaveLength(0);
    expect(control.committed(0)).toBe(1n);
  });

  it('gives up on a message after maxAttempts non-transient failures and moves on', async () => {
    const { work, publisher, control, engine } = engineSetup({ maxAttempts: 3 });
    engine.accept('t', 0, [message(0, 0, 'write', 'a'), message(0, 1, 'write', 'a')], 2n);
    // Waited for, not slept on: under load a retry's backoff timer fires late.
    for (let i = 0; i < 3; i++) {
      await vi.waitFor(() => expect(work.runs[0]?.items[0]?.message.offset).toBe('0'));
      work.fail(0, new TypeError('cannot read properties of undefined'));
    }
    await vi.waitFor(() => expect(work.gaveUp.map((u) => u.attempt)).toEqual([3]));
    // The next write of the key runs after the give-up.
    await vi.waitFor(() => expect(work.runs[0]?.items[0]?.message.offset).toBe('1'));
    work.succeed(0);
    await flush();
    publisher.ack();
    publisher.ack();
    await flush();
    expect(control.committed(0)).toBe(2n);
  });

  it('runs other keys in the slot a failed message leaves free until its next try (a lane of one slot)', async () => {
    // A backoff long enough that the retry cannot be what starts the reads below.
    const { work, engine } = engineSetup({
      concurrency: 1,
      maxAttempts: 3,
      backoff: { initialMs: 5_000, maxMs: 5_000 },
    });
    engine.accept('t', 0, [message(0, 0, 'read', 'slow'), message(0, 1, 'read', 'cheap')]);
    engine.accept('t', 1, [message(1, 0, 'read', 'other')]);
    await flush();
    expect(work.runs.map((r) => r.items.map((i) => i.key))).toEqual([['slow']]);
    work.fail(0, new TypeError('statement ran too long'));
    const started: string[] = [];
    for (let i = 0; i < 2; i++) {
      await flush();
      expect(work.runs).toHaveLength(1);
      started.push(...(work.runs[0]?.items.map((item) => item.key) ?? []));
      work.succeed(0);
    }
    expect(started.sort()).toEqual(['cheap', 'other']);
    await engine.drain(0);
  });

  it('gives a statement timeout the lane maxTimeoutAttempts tries, if fewer than maxAttempts', async () => {
    const { RetryableError } = await import('../../src/contracts/errors.ts');
    const timeout = () =>
      new RetryableError('statement timeout or cancel', { bounded: true, errorClass: 'StatementTimeout' });
    const { work, engine } = engineSetup({ maxAttempts: 5, maxTimeoutAttempts: 2 });
    engine.accept('t', 0, [message(0, 0, 'read', 'a'), message(0, 1, 'read', 'b')]);
    await flush();
    const running = (key: string) => work.runs.findIndex((r) => r.items[0]?.key === key);
    for (let i = 0; i < 2; i++) {
      await vi.waitFor(() => expect(running('a')).toBeGreaterThanOrEqual(0));
      work.fail(running('a'), timeout());
    }
    await vi.waitFor(() => expect(work.gaveUp.map((u) => u.attempt)).toEqual([2]));
    // Other failures keep maxAttempts.
    await vi.waitFor(() => expect(running('b')).toBeGreaterThanOrEqual(0));
    work.fail(running('b'), new TypeError('boom'));
    await new Promise((r) => setTimeout(r, 10));
    expect(work.gaveUp).toHaveLength(1);
  });

  it('says how long each partition has waited at its done position, and resets when it moves', async () => {
    const { work, publisher, engine } = engineSetup({ concurrency: 2 });
    const later = (ms: number) => Date.now() + ms;
    expect(engine.partitionWaits()).toEqual([]);
    engine.accept('t', 0, [message(0, 0, 'write', 'a'), message(0, 1, 'write', 'b')], 2n);
    engine.accept('t', 1, [message(1, 0, 'write', 'c')], 1n);
    await flush();
    const byPartition = (now: number) =>
      Object.fromEntries(engine.partitionWaits(now).map((w) => [w.partition, w]));
    expect(byPartition(later(5_000))[0]).toMatchObject({ done: 0n, unfinished: 2 });
    expect(byPartition(later(5_000))[0]?.waitingMs).toBeGreaterThanOrEqual(5_000);
    expect(engine.donePosition('t', 0)).toBe(0n);
    // Offset 1 done first: the done position stays, so does the wait.
    work.succeed(work.runs.findIndex((r) => r.items[0]?.key === 'b'));
    await flush();
    publisher.ack();
    await flush();
    expect(byPartition(later(5_000))[0]?.waitingMs).toBeGreaterThanOrEqual(5_000);
    work.succeed(work.runs.findIndex((r) => r.items[0]?.key === 'a'));
    await flush();
    publisher.ack();
    await flush();
    expect(byPartition(later(5_000))[0]).toMatchObject({ done: 2n, unfinished: 0, waitingMs: 0 });
    expect(engine.donePosition('t', 0)).toBe(2n);
    expect(byPartition(later(5_000))[1]?.unfinished).toBe(1);
    // Work arriving at an idle partition waits from its arrival, not from the last move.
    engine.accept('t', 0, [message(0, 2, 'write', 'd')], 3n);
    expect(byPartition(Date.now())[0]?.waitingMs).toBeLessThan(1_000);
    expect(engine.donePosition('t', 9)).toBeUndefined();
  });

  it('splits a usage batch that failed into single events, each with its own tries', async () => {
    const { work, engine } = engineSetup({ maxAttempts: 2 });
    engine.accept('t', 0, [message(0, 0, 'usage', 'a'), message(0, 1, 'usage', 'b')]);
    await flush();
    expect(work.runs[0]?.unit.batched).toBe(true);
    work.fail(0, new Error('boom'));
    await flush();
    expect(work.runs.map((r) => [r.unit.batched, r.items.map((i) => i.message.offset)])).toEqual([
      [false, ['0']],
      [false, ['1']],
    ]);
  });

  it('after a rebalance, commits nothing from before it and waits for its in-flight units', async () => {
    const { work, publisher, control, engine } = engineSetup();
    engine.accept('t', 0, [message(0, 0, 'write', 'a'), message(0, 1, 'write', 'b')], 2n);
    await flush();
    engine.reassigned();
    // Redelivered from the committed offset (none yet): the same messages again.
    engine.accept('t', 0, [message(0, 0, 'write', 'a'), message(0, 1, 'write', 'b')], 2n);
    await flush();
    expect(work.runs).toHaveLength(2); // only the old ones: the new state waits for them
    work.succeed(0);
    work.succeed(0);
    await flush();
    publisher.ack();
    publisher.ack();
    await flush();
    expect(control.commits).toHaveLength(0);
    expect(work.runs).toHaveLength(2); // now the redelivered ones run
    work.succeed(0);
    work.succeed(0);
    await flush();
    publisher.ack();
    publisher.ack();
    await flush();
    expect(control.committed(0)).toBe(2n);
  });

  it('drains: finishes and publishes running units, drops queued ones, commits below them', async () => {
    const { work, publisher, control, engine } = engineSetup({ concurrency: 1 });
    engine.accept('t', 0, [message(0, 0, 'write', 'a'), message(0, 1, 'write', 'b')], 2n);
    await flush();
    const drained = engine.drain(5_000);
    work.succeed(0);
    await flush();
    publisher.ack();
    await drained;
    expect(work.runs).toHaveLength(0);
    expect(control.committed(0)).toBe(1n);
  });

  it('with a commit interval, commits the first finished unit at once and the next ones together, and a drain does not wait for the interval', async () => {
    const { work, publisher, control, engine } = engineSetup({ commitIntervalMs: 60_000, concurrency: 8 });
    engine.accept(
      't',
      0,
      ['a', 'b', 'c', 'd'].map((k, i) => message(0, i, 'write', k)),
      4n,
    );
    await flush();
    work.succeed(0);
    await flush();
    publisher.ack();
    await flush();
    expect(control.commits.map((c) => c.map((o) => o.offset))).toEqual([['1']]);
    for (let i = 0; i < 3; i++) {
      work.succeed(0);
      await flush();
      publisher.ack();
      await flush();
    }
    // Within the interval: nothing more yet.
    expect(control.commits).toHaveLength(1);
    await engine.drain(5_000);
    expect(control.commits.map((c) => c.map((o) => o.offset))).toEqual([['1'], ['4']]);
  });

  it('over random completion orders: order per key, one effect per message, commits never past unfinished work', async () => {
    const kinds = fc.constantFrom<Kind>('read', 'write', 'usage');
    const traffic = fc.array(
      fc.tuple(fc.integer({ min: 0, max: 2 }), kinds, fc.constantFrom('a', 'b', 'c', '')),
      {
        minLength: 1,
        maxLength: 60,
      },
    );
    await fc.assert(
      fc.asyncProperty(
        traffic,
        fc.array(fc.nat(), { minLength: 1, maxLength: 40 }),
        fc.integer({ min: 1, max: 4 }),
        async (msgs, choices, concurrency) => {
          const { work, publisher, control, engine } = engineSetup({ concurrency, maxBatch: 3 });
          const next = [0, 0, 0];
          const all: InboundMessage[] = [];
          const chunks: InboundMessage[][] = [[], [], []];
          for (const [p, kind, key] of msgs) {
            const m = message(p, (next[p] as number)++, kind, key);
            all.push(m);
            (chunks[p] as InboundMessage[]).push(m);
          }
          chunks.forEach((c, p) => {
            if (c.length > 0) engine.accept('t', p, c, BigInt(c.length));
          });
          const acked = new Set<string>();
          const ackedOrder: string[] = [];
          let step = 0;
          for (let guard = 0; guard < 10_000; guard++) {
            await flush();
            // Commits never pass a message whose effect and result are not both done.
            for (const batch of control.commits)
              for (const c of batch)
                for (let o = 0; o < Number(c.offset); o++)
                  expect(acked.has(`${c.partition}/${o}`)).toBe(true);
            if (work.runs.length === 0 && publisher.pending.length === 0) break;
            const choice = choices[step++ % choices.length] as number;
            if (publisher.pending.length > 0 && (choice % 2 === 0 || work.runs.length === 0)) {
              for (const r of publisher.pending[0]?.records ?? []) {
                acked.add(String(r.value));
                ackedOrder.push(`${String(r.key)}:${String(r.value)}`);
              }
              publisher.ack();
            } else {
              work.succeed(choice % work.runs.length);
            }
          }
          expect(acked.size).toBe(all.length);
          for (let p = 0; p < 3; p++)
            if ((next[p] as number) > 0) expect(control.committed(p)).toBe(BigInt(next[p] as number));
          // Effects and results of one key keep offset order within a partition.
          for (const order of [
            work.effectOrder,
            ackedOrder.map((s) => s.replace(/^(.*):(\d+)\/(\d+)$/, '$2/$1/$3')),
          ]) {
            const seen = new Map<string, number>();
            for (const entry of order) {
              const [p, key, offset] = entry.split('/') as [string, string, string];
              const m = all.find((x) => x.partition === Number(p) && x.offset === offset) as InboundMessage;
              if (m.value?.toString() === 'read') continue;
              const k = `${p}/${key}`;
              expect(Number(offset)).toBeGreaterThan(seen.get(k) ?? -1);
              seen.set(k, Number(offset));
            }
          }
          expect(work.effectOrder).toHaveLength(all.length);
        },
      ),
      { numRuns: 150 },
    );
  });

  describe('patterns touched across partitions', () => {
    const touching = (m: InboundMessage) => [m.key?.toString().split('@')[1] ?? 'none'];

    it('runs no two units touching one pattern at once, and others beside them', async () => {
      const { work, engine } = engineSetup({ concurrency: 4 });
      work.touchesOf = touching;
      engine.accept('t', 0, [message(0, 0, 'write', 'a@p1')]);
      engine.accept('t', 1, [message(1, 0, 'write', 'b@p1'), message(1, 1, 'write', 'c@p2')]);
      engine.accept('t', 2, [message(2, 0, 'write', 'd@p1')]);
      await flush();
      // b and d wait in memory for a's pattern; c, of the same partition as b, runs beside a.
      expect(work.runs.map((r) => r.items.map((i) => i.key))).toEqual([['a@p1'], ['c@p2']]);
      work.succeed(0);
      await flush();
      const next = work.runs.map((r) => r.items.map((i) => i.key)[0]);
      expect(next).toHaveLength(2);
      expect(next.filter((k) => k?.endsWith('@p1'))).toHaveLength(1);
      while (work.runs.length > 0) {
        work.succeed(0);
        await flush();
      }
      expect(work.effectOrder).toHaveLength(4);
    });

    it('never runs two units touching one pattern at once, and leaves no message behind, whatever finishes first', async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.array(
            fc.record({
              partition: fc.integer({ min: 0, max: 2 }),
              key: fc.constantFrom('a', 'b', 'c'),
              pattern: fc.constantFrom('p1', 'p2', 'p3'),
              kind: fc.constantFrom<Kind>('write', 'usage', 'read'),
            }),
            { minLength: 1, maxLength: 30 },
          ),
          fc.array(fc.nat(), { minLength: 1, maxLength: 60 }),
          async (sent, picks) => {
            const { work, publisher, engine } = engineSetup({ concurrency: 3 });
            work.touchesOf = (m) => (m.value?.toString() === 'read' ? undefined : touching(m));
            const offsets = new Map<number, number>();
            for (const m of sent) {
              const offset = offsets.get(m.partition) ?? 0;
              offsets.set(m.partition, offset + 1);
              engine.accept('t', m.partition, [
                message(m.partition, offset, m.kind, `${m.key}@${m.pattern}`),
              ]);
            }
            await flush();
            let step = 0;
            while (work.runs.length > 0) {
              const running = work.runs.flatMap((r) => [
                ...new Set(r.items.filter((i) => i.ordering === 'key').flatMap((i) => i.touches ?? [])),
              ]);
              expect(new Set(running).size).toBe(running.length);
              work.succeed((picks[step++ % picks.length] as number) % work.runs.length);
              await flush();
              while (publisher.pending.length > 0) publisher.ack();
              await flush();
            }
            expect(work.effectOrder).toHaveLength(sent.length);
          },
        ),
        { numRuns: 200 },
      );
    });
  });
});
