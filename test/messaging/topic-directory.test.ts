// The topic directory answers which reply topics exist without a request, or a cache entry, per name a
// producer chose: a flood of distinct names once ran the worker out of memory.
import { describe, expect, it } from 'vitest';
import { KafkaAdminError, type KafkaAdmin } from '../../src/messaging/kafka/admin.ts';
import { TopicDirectory } from '../../src/messaging/kafka/topic-directory.ts';

function fakeAdmin(topics: Map<string, number>) {
  const calls = { listTopics: 0, metadata: [] as string[] };
  const admin = {
    listTopics: () => {
      calls.listTopics++;
      return Promise.resolve([...topics.keys()]);
    },
    fetchTopicMetadata: ({ topics: [name = ''] }: { topics: string[] }) => {
      calls.metadata.push(name);
      const partitions = topics.get(name);
      if (partitions === undefined) {
        return Promise.reject(
          new KafkaAdminError(`no metadata for topic ${name}`, 'UNKNOWN_TOPIC_OR_PARTITION'),
        );
      }
      return Promise.resolve({
        topics: [
          { name, partitions: Array.from({ length: partitions }, (_, partitionId) => ({ partitionId })) },
        ],
      });
    },
  };
  return { admin: admin as unknown as KafkaAdmin, calls };
}

describe('TopicDirectory', () => {
  it('answers distinct unknown names from one listing a second, and keeps nothing of them', async () => {
    const { admin, calls } = fakeAdmin(new Map([['p.replies', 3]]));
    let now = 0;
    const directory = new TopicDirectory(admin, () => now);
    const names = Array.from({ length: 10_000 }, (_, i) => `p.reply-${i}`);
    const answers = await Promise.all(names.map((n) => directory.partitions(n)));
    expect(answers.every((a) => a === undefined)).toBe(true);
    for (const n of names.slice(0, 100)) expect(await directory.partitions(n)).toBeUndefined();
    expect(calls.listTopics).toBe(1);
    expect(calls.metadata).toEqual([]);
    expect(directory.size).toBe(0);
    now += 1_000;
    expect(await directory.partitions('p.reply-x')).toBeUndefined();
    expect(calls.listTopics).toBe(2);
  });

  it('looks up an existing topic once, and sees one created after the listing a second later', async () => {
    const topics = new Map([['p.replies', 3]]);
    const { admin, calls } = fakeAdmin(topics);
    let now = 0;
    const directory = new TopicDirectory(admin, () => now);
    expect(await Promise.all([directory.partitions('p.replies'), directory.partitions('p.replies')])).toEqual(
      [3, 3],
    );
    expect(calls.metadata).toEqual(['p.replies']);
    topics.set('p.new', 2);
    expect(await directory.partitions('p.new')).toBeUndefined();
    now += 1_000;
    expect(await directory.partitions('p.new')).toBe(2);
    expect(directory.size).toBe(2);
    // A topic gone from the listing leaves the cache once its entry is old.
    topics.delete('p.new');
    now += 60_000;
    expect(await directory.partitions('p.new')).toBeUndefined();
    expect(directory.size).toBe(1);
  });
});
