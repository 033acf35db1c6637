// Open transactions that hold a partition (src/messaging/kafka/transaction-holds.ts), in-process: a read
// committed consumer waits at the last stable offset while a transaction there is open; one held at the
// same offset for the warning time is named once, and its end once; progress is never a hold.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TransactionHolds, type HoldEvent } from '../../src/messaging/kafka/transaction-holds.ts';

const at = (position: bigint, stableOffset: bigint, highWatermark: bigint) => ({
  position,
  stableOffset,
  highWatermark,
});

describe('transaction holds', () => {
  it('names a partition held at one offset once, after the warning time, and its release once', () => {
    const holds = new TransactionHolds(30_000);
    expect(holds.observe('t/0', at(5n, 5n, 9n), 0)).toBeUndefined();
    expect(holds.observe('t/0', at(5n, 5n, 12n), 29_999)).toBeUndefined();
    expect(holds.observe('t/0', at(5n, 5n, 12n), 30_000)).toEqual({
      kind: 'held',
      stableOffset: 5n,
      behind: 7n,
      heldMs: 30_000,
    });
    expect(holds.observe('t/0', at(5n, 5n, 12n), 60_000)).toBeUndefined();
    // The broker aborted it: the stable offset moves to the end.
    expect(holds.observe('t/0', at(5n, 13n, 13n), 61_000)).toEqual({ kind: 'released', heldMs: 61_000 });
    expect(holds.observe('t/0', at(13n, 13n, 13n), 62_000)).toBeUndefined();
  });

  it('is not a hold: records still to read below the stable offset, a caught-up partition, progress', () => {
    const holds = new TransactionHolds(1_000);
    expect(holds.observe('t/0', at(3n, 5n, 9n), 0)).toBeUndefined();
    expect(holds.observe('t/0', at(3n, 5n, 9n), 5_000)).toBeUndefined();
    expect(holds.observe('t/0', at(9n, 9n, 9n), 10_000)).toBeUndefined();
    expect(holds.observe('t/0', at(9n, 9n, 9n), 20_000)).toBeUndefined();
    // Transactions one after another: each waits less than the warning time.
    for (let i = 0; i < 10; i++)
      expect(holds.observe('t/0', at(BigInt(10 + i), BigInt(10 + i), 40n), 30_000 + i * 900)).toBeUndefined();
  });

  it('starts afresh for a partition that left and came back', () => {
    const holds = new TransactionHolds(1_000);
    holds.observe('t/0', at(5n, 5n, 9n), 0);
    holds.forget('t/0');
    expect(holds.observe('t/0', at(5n, 5n, 9n), 1_500)).toBeUndefined();
    expect(holds.observe('t/0', at(5n, 5n, 9n), 2_500)?.kind).toBe('held');
  });

  it('says held only after the warning time at one offset, and released only after held (property)', () => {
    const step = fc.record({
      advance: fc.integer({ min: 0, max: 20_000 }),
      stable: fc.integer({ min: 0, max: 3 }),
      position: fc.integer({ min: 0, max: 3 }),
      more: fc.integer({ min: 0, max: 2 }),
    });
    fc.assert(
      fc.property(fc.array(step, { maxLength: 60 }), (steps) => {
        const warnAfter = 30_000;
        const holds = new TransactionHolds(warnAfter);
        let now = 0;
        let heldSince: { at: number; stable: number } | undefined;
        let warned = false;
        for (const s of steps) {
          now += s.advance;
          const stable = s.stable;
          const ends = at(BigInt(s.position), BigInt(stable), BigInt(stable + s.more));
          const held = s.position >= stable && s.more > 0;
          if (!held || heldSince?.stable !== stable) heldSince = held ? { at: now, stable } : undefined;
          const event: HoldEvent | undefined = holds.observe('t/0', ends, now);
          if (event?.kind === 'held') {
            expect(warned).toBe(false);
            expect(heldSince).toBeDefined();
            expect(now - (heldSince?.at ?? now)).toBeGreaterThanOrEqual(warnAfter);
            warned = true;
          } else if (event?.kind === 'released') {
            expect(warned).toBe(true);
            warned = false;
          }
          if (warned && heldSince === undefined) expect.unreachable('a hold that ended was not released');
        }
      }),
    );
  });
});
