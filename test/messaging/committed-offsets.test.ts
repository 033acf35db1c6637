// A redrive's original must be committed before the redrive takes its identity. Any producer chooses the
// coordinates asked about, so the reads of committed offsets are shared and spaced, and a flood of
// questions written long ago is answered without a read of its own.
import { describe, expect, it } from 'vitest';
import type { KafkaAdmin } from '../../src/messaging/kafka/admin.ts';
import { CommittedOffsets } from '../../src/messaging/kafka/committed-offsets.ts';

function fakeAdmin(committed: Map<number, bigint>) {
  const calls: { groupId: string; at: number }[] = [];
  let clockNow = () => 0;
  const admin = {
    fetchOffsets: ({ groupId, topics }: { groupId: string; topics: string[] }) => {
      calls.push({ groupId, at: clockNow() });
      return Promise.resolve(
        topics.map((topic) => ({
          topic,
          partitions: [0, 1, 2].map((partition) => ({
            partition,
            offset: String(committed.get(partition) ?? -1n),
          })),
        })),
      );
    },
  };
  return {
    admin: admin as unknown as KafkaAdmin,
    calls,
    useClock: (now: () => number) => (clockNow = now),
  };
}

/** A clock whose sleeps pass at once and move it on; `onSleep` runs as time passes. */
function fakeClock(onSleep: (time: number) => void = () => undefined) {
  const clock = {
    time: 0,
    now: () => clock.time,
    sleep: (ms: number) => {
      clock.time += Math.max(0, ms);
      onSleep(clock.time);
      return Promise.resolve();
    },
  };
  return clock;
}

const at = (partition: number, offset: bigint) => ({
  group: 'g.writes',
  topic: 'p.insert',
  partition,
  offset,
});

describe('CommittedOffsets', () => {
  it('answers an original committed past from a read begun after the redrive was written', async () => {
    const committed = new Map([[1, 10n]]);
    const { admin, calls, useClock } = fakeAdmin(committed);
    const clock = fakeClock();
    useClock(clock.now);
    const offsets = new CommittedOffsets(admin, clock);
    expect(await offsets.committedPast(at(1, 9n), 0, 2_000)).toEqual({ passed: true, committed: 10n });
    expect(calls).toHaveLength(1);
    // Seen committed once: no read needed for offsets below it.
    expect(await offsets.committedPast(at(1, 3n), 5_000, 2_000)).toMatchObject({ passed: true });
    expect(calls).toHaveLength(1);
  });

  it('waits a little for an original still being committed, then refuses one that is not', async () => {
    const committed = new Map([[2, 40n]]);
    const { admin, calls, useClock } = fakeAdmin(committed);
    // The original (offset 41) is committed 600 ms after its redrive was written.
    const clock = fakeClock((time) => {
      if (time >= 600) committed.set(2, 42n);
    });
    useClock(clock.now);
    const offsets = new CommittedOffsets(admin, clock);
    expect(await offsets.committedPast(at(2, 41n), 0, 2_000)).toEqual({ passed: true, committed: 42n });
    // A forged one names an offset far ahead: asked again every 250 ms at most, refused after the wait.
    const before = calls.length;
    expect(await offsets.committedPast(at(2, 1_000n), clock.time, 2_000)).toEqual({
      passed: false,
      committed: 42n,
    });
    const reads = calls.slice(before).map((c) => c.at);
    expect(reads.length).toBeLessThanOrEqual(2_000 / 250 + 2);
    for (let i = 1; i < reads.length; i++)
      expect((reads[i] as number) - (reads[i - 1] as number)).toBeGreaterThanOrEqual(250);
    // Nothing committed on a partition (or one that does not exist): refused.
    expect(await offsets.committedPast(at(7, 0n), clock.time, 0)).toEqual({ passed: false, committed: -1n });
  });

  it('answers a flood of forged coordinates written long ago from one read', async () => {
    const { admin, calls, useClock } = fakeAdmin(new Map([[0, 5n]]));
    const clock = fakeClock();
    useClock(clock.now);
    const offsets = new CommittedOffsets(admin, clock);
    clock.time = 60_000;
    const answers = await Promise.all(
      Array.from({ length: 10_000 }, (_, i) => offsets.committedPast(at(0, 100n + BigInt(i)), 1_000, 2_000)),
    );
    expect(answers.every((a) => !a.passed)).toBe(true);
    expect(calls).toHaveLength(1);
    // Another group is asked apart.
    await offsets.committedPast({ ...at(0, 1n), group: 'g.reads' }, 1_000, 2_000);
    expect(calls.map((c) => c.groupId)).toEqual(['g.writes', 'g.reads']);
  });
});
