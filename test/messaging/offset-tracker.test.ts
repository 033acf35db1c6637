// The commit position of a partition: never past an unfinished message, whatever order messages finish in.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { OffsetTracker } from '../../src/messaging/engine/offset-tracker.ts';

describe('OffsetTracker', () => {
  it('stays at the first unfinished offset and jumps once the gap closes', () => {
    const t = new OffsetTracker(10n);
    for (const o of [10n, 11n, 12n, 13n]) t.add(o);
    expect(t.safe).toBe(10n);
    t.finish(11n);
    t.finish(12n);
    expect(t.safe).toBe(10n);
    expect(t.unfinished).toBe(2);
    t.finish(10n);
    expect(t.safe).toBe(13n);
    t.finish(13n);
    expect(t.safe).toBe(14n);
    expect(t.unfinished).toBe(0);
  });

  it('counts offsets that were not messages (control records) once everything before is done', () => {
    const t = new OffsetTracker(0n);
    t.add(0n);
    t.add(1n);
    t.fetchedTo(5n);
    t.finish(1n);
    expect(t.safe).toBe(0n);
    t.finish(0n);
    expect(t.safe).toBe(5n);
  });

  it('ignores a finish it does not know or has seen, and refuses offsets out of order', () => {
    const t = new OffsetTracker(0n);
    t.add(0n);
    t.add(1n);
    t.finish(7n);
    t.finish(1n);
    t.finish(1n);
    expect(t.unfinished).toBe(1);
    t.finish(0n);
    t.finish(0n);
    expect(t.safe).toBe(2n);
    expect(() => t.add(1n)).toThrow(/out of order/);
  });

  it('never passes an unfinished offset and only moves forward, for any order of finishing', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 1000 }),
        fc
          .integer({ min: 1, max: 200 })
          .chain((n) =>
            fc.tuple(
              fc.constant(n),
              fc.shuffledSubarray([...Array(n).keys()], { minLength: n, maxLength: n }),
            ),
          ),
        fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 1, maxLength: 200 }),
        (start, [n, order], gaps) => {
          // Offsets with gaps between them, as compaction or transaction markers leave.
          const offsets: bigint[] = [];
          let next = BigInt(start);
          for (let i = 0; i < n; i++) {
            offsets.push(next);
            next += BigInt(gaps[i % gaps.length] as number);
          }
          const t = new OffsetTracker(BigInt(start));
          for (const o of offsets) t.add(o);
          const finished = new Set<bigint>();
          let previous = t.safe;
          for (const index of order) {
            const offset = offsets[index] as bigint;
            t.finish(offset);
            finished.add(offset);
            const firstUnfinished = offsets.find((o) => !finished.has(o));
            expect(t.safe).toBe(firstUnfinished ?? (offsets[n - 1] as bigint) + 1n);
            expect(t.safe >= previous).toBe(true);
            expect(t.unfinished).toBe(n - finished.size);
            previous = t.safe;
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
