// Echo on @platformatic/kafka (KIP-848 consumer group protocol) through the worker's own group member
// (src/messaging/kafka/group-member.ts; it began as this bench's candidate adapter): consumes the
// request topic, answers each record on the reply topic (same partition number, correlation id header
// copied) with an idempotent producer (acks from all replicas), and commits a partition only up to what it
// has answered. Prints "ready" once the member has joined and received its first assignment. SIGTERM:
// stops fetching, answers and commits what it holds, leaves the group at once.
//   REQUEST_TOPIC=... REPLY_TOPIC=... KAFKA_GROUP_ID=... node bench/candidates/echo-platformatic.ts
import { ProduceAcks, Producer } from '@platformatic/kafka';
import { CORRELATION_HEADER, PartitionChains, echoEnv, log } from './echo-common.ts';
import { KafkaClient } from '../../src/messaging/kafka/client.ts';
import type { FetchedRecord } from '../../src/messaging/kafka/fetcher.ts';
import { createGroupMember } from '../../src/messaging/kafka/group-member.ts';

const env = echoEnv();
const chains = new PartitionChains();
const header = Buffer.from(CORRELATION_HEADER);
const producer = new Producer({
  clientId: `${env.name}-p`,
  bootstrapBrokers: env.brokers,
  idempotent: true,
  acks: ProduceAcks.ALL,
  autocreateTopics: false,
});
let answered = 0;

const answer = async (topic: string, partition: number, records: FetchedRecord[], next: bigint) => {
  if (records.length > 0) {
    await producer.send({
      messages: records.map((r) => {
        const corr = r.headers.find(([k]) => k?.equals(header))?.[1];
        return {
          topic: env.replyTopic,
          partition,
          key: r.key ?? undefined,
          value: r.value ?? undefined,
          headers: corr ? new Map([[header, corr]]) : new Map<Buffer, Buffer>(),
        };
      }),
    });
    answered += records.length;
  }
  await lane.commit([{ topic, partition, offset: next.toString() }]);
};

const assigned = new Set<number>();
let ready = false;
const lane = createGroupMember({
  client: new KafkaClient(env.name, { brokers: env.brokers }),
  groupId: env.groupId,
  topics: [env.requestTopic],
  name: 'echo',
  reset: 'earliest',
  maxBytesPerPartition: 1_048_576,
  stallTimeoutMs: 30_000,
  hooks: {
    onRecords: (topic, partition, records, next) =>
      chains.add(
        `${topic}/${partition}`,
        () => answer(topic, partition, records, next),
        (err) => log(env.name, `answering ${topic}/${partition} failed`, err),
      ),
    onAssignment: (added, removed) => {
      for (const p of added) assigned.add(p.partition);
      for (const p of removed) assigned.delete(p.partition);
      log(env.name, 'assignment', {
        added: added.map((p) => p.partition),
        removed: removed.map((p) => p.partition),
        now: [...assigned].sort((a, b) => a - b),
      });
    },
    onMembership: (joined) => {
      if (!joined || ready) return;
      ready = true;
      process.stdout.write('ready\n');
      log(env.name, 'ready');
    },
    onFatal: (err) => log(env.name, 'member lost its group', err),
    onError: (what, err) => log(env.name, `${what} error`, err),
  },
});

await lane.start();

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  const t0 = Date.now();
  await lane.stopFetching();
  await chains.drain();
  await lane.close();
  await producer.close().catch(() => undefined);
  log(env.name, 'stopped', { ms: Date.now() - t0, answered });
  process.exit(0);
};
process.once('SIGTERM', () => void stop());
process.once('SIGINT', () => void stop());
