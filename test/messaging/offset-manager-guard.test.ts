// kafkajs's offset managers of two generations share one committed-offsets object per group: the new one
// clears the topics it does not hold, and the old one, still finishing a fetch, crashed reading them
// (kafkajs#558, #1366). This runs kafkajs's own OffsetManager the way a rebalance does.
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';

type Manager = {
  resolveOffsets(): Promise<void>;
  resolveOffset(p: { topic: string; partition: number; offset: string }): void;
  uncommittedOffsets(): {
    topics: { topic: string; partitions: { partition: number | string; offset: string }[] }[];
  };
  countResolvedOffsets(): { toString(): string };
};
type ManagerClass = new (options: Record<string, unknown>) => Manager;

const require = createRequire(import.meta.url);
const load = () => require('kafkajs/src/consumer/offsetManager') as ManagerClass;

function twoGenerations(OffsetManager: ManagerClass) {
  const shared: Record<string, Record<string, string>> = {};
  const cluster = {
    committedOffsets: () => shared,
    defaultOffset: () => -1,
    fetchTopicsOffset: () => Promise.resolve([]),
  };
  const coordinator = {
    offsetFetch: ({ topics }: { topics: { topic: string; partitions: { partition: number }[] }[] }) =>
      Promise.resolve({
        responses: topics.map((t) => ({
          topic: t.topic,
          partitions: t.partitions.map((p) => ({ partition: p.partition, offset: '5' })),
        })),
      }),
  };
  const make = (memberAssignment: Record<string, number[]>, generationId: number) => {
    const m = new OffsetManager({
      cluster,
      memberAssignment,
      topicConfigurations: {},
      instrumentationEmitter: { emit: () => undefined },
      groupId: 'g',
      generationId,
      memberId: 'm',
      autoCommit: false,
    }) as Manager & { getCoordinator: () => Promise<typeof coordinator> };
    m.getCoordinator = () => Promise.resolve(coordinator);
    return m;
  };
  const old = make({ insert: [0, 1], usage: [0] }, 1);
  // The next generation holds only usage: its manager clears insert from the shared object.
  const next = make({ usage: [0, 1] }, 2);
  return { old, next };
}

describe("kafkajs's offset managers across a rebalance", () => {
  it('the previous generation finishes its fetch without crashing once the guard is installed', async () => {
    await import('../../src/messaging/kafka/offset-manager-guard.ts');
    const { old, next } = twoGenerations(load());
    await expect(old.resolveOffsets()).resolves.toBeUndefined();
    expect(() => old.resolveOffset({ topic: 'insert', partition: 1, offset: '9' })).not.toThrow();
    expect(() => old.uncommittedOffsets()).not.toThrow();
    expect(() => old.countResolvedOffsets()).not.toThrow();
    // A revoked topic resolved in the new generation is ignored; its own topics still resolve.
    next.resolveOffset({ topic: 'insert', partition: 0, offset: '3' });
    next.resolveOffset({ topic: 'usage', partition: 1, offset: '7' });
    expect(next.uncommittedOffsets().topics).toEqual([
      { topic: 'usage', partitions: [{ partition: '1', offset: '8' }] },
    ]);
  });
});
