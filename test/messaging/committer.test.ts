// The committer in-process, with a fake clock and broker: at most one commit started per interval, the
// first after a quiet spell at once, nothing left behind, and a drain's flush without waiting.
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Committer } from '../../src/messaging/engine/committer.ts';
import type { PartitionOffset } from '../../src/messaging/engine/ports.ts';

interface FakeState {
  topic: string;
  partition: number;
  tracker: { safe: bigint };
  committed: bigint;
}

function setup(intervalMs: number, options: { ackMs?: number; failEvery?: number } = {}) {
  const state: FakeState = { topic: 'pattern.usage', partition: 0, tracker: { safe: 0n }, committed: 0n };
  const starts: { at: number; offsets: PartitionOffset[] }[] = [];
  let calls = 0;
  const committer = new Committer(() => [state as never], {
    intervalMs,
    now: () => Date.now(),
    commit: async (offsets) => {
      starts.push({ at: Date.now(), offsets });
      calls += 1;
      await new Promise((resolve) => setTimeout(resolve, options.ackMs ?? 1));
      if (options.failEvery && calls % options.failEvery === 0) throw new Error('rebalance in progress');
    },
    committed: () => undefined,
    failed: () => undefined,
  });
  const finishTo = (offset: number) => {
    state.tracker.safe = BigInt(offset);
    void committer.commit();
  };
  return { state, starts, committer, finishTo };
}

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('Committer with an interval', () => {
  it('commits a unit after a quiet spell at once, and coalesces the ones within the interval into one commit at its end', async () => {
    const { starts, finishTo } = setup(100);
    finishTo(1);
    expect(starts.map((s) => s.offsets[0]?.offset)).toEqual(['1']);
    await vi.advanceTimersByTimeAsync(10);
    for (let offset = 2; offset <= 40; offset++) {
      finishTo(offset);
      await vi.advanceTimersByTimeAsync(2);
    }
    expect(starts).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(100);
    expect(starts.map((s) => s.offsets[0]?.offset)).toEqual(['1', '40']);
    expect(starts[1]!.at - starts[0]!.at).toBe(100);
    // Quiet for longer than the interval: the next unit commits at once.
    await vi.advanceTimersByTimeAsync(500);
    finishTo(41);
    expect(starts.map((s) => s.offsets[0]?.offset)).toEqual(['1', '40', '41']);
  });

  it('flushes at once inside the interval and leaves no timer behind (a drain does not wait for it)', async () => {
    const { state, starts, committer, finishTo } = setup(1_000);
    finishTo(1);
    await vi.advanceTimersByTimeAsync(5);
    finishTo(7);
    expect(vi.getTimerCount()).toBe(1);
    const flushed = committer.flush();
    await vi.advanceTimersByTimeAsync(5);
    await flushed;
    expect(starts.map((s) => s.offsets[0]?.offset)).toEqual(['1', '7']);
    expect(state.committed).toBe(7n);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('with an interval of 0 starts a commit as soon as the last one is done, as each unit finishes', async () => {
    const { starts, finishTo } = setup(0);
    finishTo(1);
    finishTo(2); // the first is in flight: coalesced into the next
    finishTo(3);
    await vi.advanceTimersByTimeAsync(1);
    expect(starts.map((s) => s.offsets[0]?.offset)).toEqual(['1', '3']);
    await vi.advanceTimersByTimeAsync(1);
    finishTo(4);
    expect(starts.map((s) => s.offsets[0]?.offset)).toEqual(['1', '3', '4']);
  });

  it('never starts two commits within the interval, never goes back (a failed commit is sent again), and leaves nothing behind, whatever the timing and failures', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 300 }),
        fc.integer({ min: 0, max: 50 }),
        fc.constantFrom(0, 2, 3, 4),
        fc.array(
          fc.record({ gapMs: fc.integer({ min: 0, max: 400 }), advance: fc.integer({ min: 0, max: 5 }) }),
          {
            minLength: 1,
            maxLength: 60,
          },
        ),
        async (intervalMs, ackMs, failEvery, steps) => {
          vi.setSystemTime(0);
          const { state, starts, finishTo } = setup(intervalMs, { ackMs, failEvery: failEvery || undefined });
          let offset = 0;
          for (const step of steps) {
            await vi.advanceTimersByTimeAsync(step.gapMs);
            offset += step.advance;
            finishTo(offset);
          }
          // Failed commits are left for the next finished unit, as in the engine.
          for (let i = 0; i < 5 && state.committed < BigInt(offset); i++) {
            await vi.advanceTimersByTimeAsync(intervalMs + ackMs + 1);
            finishTo(offset);
          }
          await vi.advanceTimersByTimeAsync(intervalMs + ackMs + 1);
          for (let i = 1; i < starts.length; i++) {
            expect(starts[i]!.at - starts[i - 1]!.at).toBeGreaterThanOrEqual(intervalMs);
            expect(BigInt(starts[i]!.offsets[0]!.offset)).toBeGreaterThanOrEqual(
              BigInt(starts[i - 1]!.offsets[0]!.offset),
            );
          }
          expect(state.committed).toBe(BigInt(offset));
          expect(vi.getTimerCount()).toBe(0);
        },
      ),
      { numRuns: 150 },
    );
  });
});
