// The order rules of one partition: reads in any order, writes in order per key, batches of usage events
// and of one pattern's recomputations.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PartitionScheduler, type PickedUnit } from '../../src/messaging/engine/partition-scheduler.ts';
import type { Schedulable } from '../../src/messaging/engine/ports.ts';

type Kind = 'read' | 'write' | 'usage' | 'stats';

/** `stats`: update_stats of `pattern` (it touches the pattern, and batches with its others). */
function item(offset: number, kind: Kind, key: string, pattern = 'p'): Schedulable {
  return {
    message: {
      topic: 't',
      partition: 0,
      offset: String(offset),
      key: null,
      value: Buffer.from(kind),
      headers: {},
      timestamp: '0',
    },
    ordering: kind === 'read' ? 'free' : 'key',
    key,
    batchWith: kind === 'usage' ? 'record_usage' : kind === 'stats' ? `update_stats:${pattern}` : undefined,
    ...(kind === 'stats' ? { touches: [pattern] } : {}),
    skip: false,
    correlationId: null,
  };
}

const offsets = (u: PickedUnit<Schedulable> | undefined) => u?.items.map((i) => Number(i.message.offset));

describe('PartitionScheduler', () => {
  it('lets reads pass a waiting write, and holds later writes of a busy key', () => {
    const s = new PartitionScheduler<Schedulable>({ maxBatch: 10 });
    s.push(item(0, 'write', 'a'));
    s.push(item(1, 'write', 'a'));
    s.push(item(2, 'read', 'a'));
    s.push(item(3, 'write', 'b'));
    const first = s.next();
    expect(offsets(first)).toEqual([0]);
    s.hold(first?.keys ?? []);
    expect(offsets(s.next())).toEqual([2]); // the read does not wait
    const b = s.next();
    expect(offsets(b)).toEqual([3]); // another key runs beside the first
    expect(s.next()).toBeUndefined(); // offset 1 waits for offset 0 of its key
    s.release(first?.keys ?? []);
    expect(offsets(s.next())).toEqual([1]);
  });

  it('batches usage events of ready keys in offset order, stopping a key at its next other write', () => {
    const s = new PartitionScheduler<Schedulable>({ maxBatch: 10 });
    s.push(item(0, 'usage', 'a'));
    s.push(item(1, 'usage', 'b'));
    s.push(item(2, 'usage', 'a'));
    s.push(item(3, 'write', 'a')); // update_stats of a: after the batch
    s.push(item(4, 'usage', 'a')); // after update_stats
    s.push(item(5, 'usage', 'c'));
    const batch = s.next();
    expect(offsets(batch)).toEqual([0, 1, 2, 5]);
    expect(batch?.batched).toBe(true);
    expect(new Set(batch?.keys)).toEqual(new Set(['k:a', 'k:b', 'k:c']));
    s.hold(batch?.keys ?? []);
    expect(s.next()).toBeUndefined();
    s.release(batch?.keys ?? []);
    expect(offsets(s.next())).toEqual([3]);
  });

  it("batches a run of one pattern's recomputations, whatever their keys, up to a write that touches it", () => {
    const s = new PartitionScheduler<Schedulable>({ maxBatch: 10 });
    s.push(item(0, 'stats', 'a', 'p'));
    s.push(item(1, 'stats', 'a', 'q')); // another pattern: a batch of its own, after this one (key a)
    s.push(item(2, 'stats', 'b', 'p')); // another key, the same pattern: joins
    s.push(item(3, 'usage', 'c')); // another class: not in the batch
    s.push(item(4, 'stats', 'c', 'p')); // after a usage event of its key: waits for it
    const batch = s.next();
    expect(offsets(batch)).toEqual([0, 2]);
    expect(batch?.batched).toBe(true);
    expect(new Set(batch?.keys)).toEqual(new Set(['k:a', 'k:b', 't:p']));
    s.hold(batch?.keys ?? []);
    expect(offsets(s.next())).toEqual([3]); // the usage event of key c runs beside it
    expect(s.next()).toBeUndefined(); // offset 1 waits for key a, offset 4 for keys c and p
    s.release(batch?.keys ?? []);
    expect(offsets(s.next())).toEqual([1]);
  });

  it('caps a batch by bytes too, but always takes one event', () => {
    const s = new PartitionScheduler<Schedulable>({ maxBatch: 10, maxBatchBytes: 10 });
    // Each fake event's value is its kind, 'usage': 5 bytes.
    for (let i = 0; i < 5; i++) s.push(item(i, 'usage', `k${i}`));
    expect(offsets(s.next())).toEqual([0, 1]);
    const tiny = new PartitionScheduler<Schedulable>({ maxBatch: 10, maxBatchBytes: 1 });
    tiny.push(item(0, 'usage', 'a'));
    tiny.push(item(1, 'usage', 'b'));
    expect(offsets(tiny.next())).toEqual([0]);
  });

  it('caps a batch at maxBatch and runs a batch that failed one event at a time', () => {
    const s = new PartitionScheduler<Schedulable>({ maxBatch: 2 });
    for (let i = 0; i < 5; i++) s.push(item(i, 'usage', `k${i}`));
    const first = s.next();
    expect(offsets(first)).toEqual([0, 1]);
    s.putBackSolo(first?.items ?? []);
    expect(offsets(s.next())).toEqual([0]);
    expect(offsets(s.next())).toEqual([1]);
    expect(offsets(s.next())).toEqual([2, 3]);
    expect(s.clear().map((i) => Number(i.message.offset))).toEqual([4]);
    expect(s.queued).toBe(0);
  });

  it('over random traffic and completion orders: each message runs once, writes of a key one after another in offset order', () => {
    const kinds = fc.constantFrom<Kind>('read', 'write', 'usage', 'stats');
    const traffic = fc.array(
      fc.tuple(kinds, fc.constantFrom('a', 'b', 'c', 'd', ''), fc.constantFrom('p', 'q')),
      {
        minLength: 1,
        maxLength: 120,
      },
    );
    fc.assert(
      fc.property(
        traffic,
        fc.array(fc.nat(), { minLength: 1, maxLength: 50 }),
        fc.integer({ min: 1, max: 8 }),
        (msgs, choices, maxBatch) => {
          const s = new PartitionScheduler<Schedulable>({ maxBatch });
          msgs.forEach(([kind, key, pattern], i) => s.push(item(i, kind, key, pattern)));
          const running: PickedUnit<Schedulable>[] = [];
          const started: number[] = [];
          const inFlightByKey = new Map<string, number>();
          let step = 0;
          while (started.length < msgs.length) {
            const choice = choices[step++ % choices.length] as number;
            const unit = choice % 3 !== 0 || running.length === 0 ? s.next() : undefined;
            if (unit) {
              expect(unit.items.length).toBeLessThanOrEqual(maxBatch);
              // One batch class per unit: the node applies a batch by its first message's operation.
              expect(new Set(unit.items.map((i) => i.batchWith)).size).toBe(1);
              for (const k of unit.keys) {
                // No two units of one key at once.
                expect(inFlightByKey.get(k) ?? 0).toBe(0);
                inFlightByKey.set(k, 1);
              }
              s.hold(unit.keys);
              running.push(unit);
              started.push(...unit.items.map((i) => Number(i.message.offset)));
              continue;
            }
            // Nothing may start: something must be running, or the queue would be stuck.
            expect(running.length).toBeGreaterThan(0);
            const done = running.splice(choice % running.length, 1)[0] as PickedUnit<Schedulable>;
            s.release(done.keys);
            for (const k of done.keys) inFlightByKey.set(k, 0);
          }
          expect([...started].sort((x, y) => x - y)).toEqual(msgs.map((_, i) => i));
          // Writes of one key started in offset order.
          const byKey = new Map<string, number[]>();
          for (const o of started) {
            const [kind, key, pattern] = msgs[o] as [Kind, string, string];
            if (kind !== 'read') byKey.set(key, [...(byKey.get(key) ?? []), o]);
            if (kind === 'stats') byKey.set(`t:${pattern}`, [...(byKey.get(`t:${pattern}`) ?? []), o]);
          }
          for (const list of byKey.values()) expect(list).toEqual([...list].sort((x, y) => x - y));
        },
      ),
      { numRuns: 300 },
    );
  });
});
