// The group's assignor: a topic's partitions go only to the members of its lane, evenly.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { assignByLane } from '../../src/messaging/kafka/lane-assignor.ts';

const laneOf = (topic: string) =>
  ({ insert: 'writes', usage: 'writes', search: 'reads', analytics: 'analytics' })[topic];

const partitions = (topic: string, n: number) =>
  Array.from({ length: n }, (_, partition) => ({ topic, partition }));

describe('assignByLane', () => {
  it("gives each lane's members only their lane's topics, spread evenly", () => {
    const members = [
      { memberId: 'a-writes', lane: 'writes' },
      { memberId: 'b-writes', lane: 'writes' },
      { memberId: 'a-reads', lane: 'reads' },
      { memberId: 'a-analytics', lane: 'analytics' },
    ];
    const all = [
      ...partitions('insert', 3),
      ...partitions('usage', 3),
      ...partitions('search', 3),
      ...partitions('analytics', 3),
    ];
    const result = assignByLane(members, all, laneOf);
    expect(result.get('a-reads')).toEqual({ search: [0, 1, 2] });
    expect(result.get('a-analytics')).toEqual({ analytics: [0, 1, 2] });
    const writes = [result.get('a-writes'), result.get('b-writes')].map((a) =>
      Object.values(a ?? {}).reduce((n, list) => n + list.length, 0),
    );
    expect(writes).toEqual([3, 3]);
    expect(Object.keys(result.get('a-writes') ?? {}).every((t) => laneOf(t) === 'writes')).toBe(true);
  });

  it('leaves a lane without members unassigned until one joins', () => {
    const result = assignByLane(
      [{ memberId: 'w', lane: 'writes' }],
      [...partitions('insert', 2), ...partitions('search', 2)],
      laneOf,
    );
    expect(result.get('w')).toEqual({ insert: [0, 1] });
  });

  it('assigns every partition of a lane exactly once, whatever the members', () => {
    const lanes = fc.constantFrom('writes', 'reads', 'analytics');
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.tuple(fc.string({ minLength: 1, maxLength: 5 }), lanes), {
          selector: (m) => m[0],
          minLength: 1,
          maxLength: 12,
        }),
        fc.integer({ min: 1, max: 12 }),
        (raw, n) => {
          const members = raw.map(([memberId, lane]) => ({ memberId, lane }));
          const all = ['insert', 'usage', 'search', 'analytics'].flatMap((t) => partitions(t, n));
          const result = assignByLane(members, all, laneOf);
          for (const t of ['insert', 'usage', 'search', 'analytics']) {
            const lane = laneOf(t) as string;
            const holders = members.filter((m) => m.lane === lane);
            const got = members.flatMap((m) => (result.get(m.memberId)?.[t] ?? []).map((p) => ({ p, m })));
            if (holders.length === 0) {
              expect(got).toEqual([]);
              continue;
            }
            expect(got.map((g) => g.p).sort((x, y) => x - y)).toEqual([...Array(n).keys()]);
            expect(got.every((g) => g.m.lane === lane)).toBe(true);
          }
        },
      ),
    );
  });
});
