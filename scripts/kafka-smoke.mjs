// Checks that kafkajs speaks to the local broker: admin, produce with headers, group consume, commit.
import { Kafka, logLevel } from 'kafkajs';

const brokers = (process.env.KAFKA_BROKERS || '127.0.0.1:9092').split(',');
const kafka = new Kafka({ clientId: 'smoke', brokers, logLevel: logLevel.ERROR });
const topic = `smoke-${Date.now()}`;
const admin = kafka.admin();
await admin.connect();
await admin.createTopics({ topics: [{ topic, numPartitions: 3 }], waitForLeaders: true });
const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
await producer.connect();
await producer.send({
  topic,
  acks: -1,
  messages: Array.from({ length: 100 }, (_, i) => ({
    key: `k${i % 7}`,
    value: `v${i}`,
    headers: { h: Buffer.from([0, 1, i]) },
  })),
});
const consumer = kafka.consumer({ groupId: `${topic}-g`, maxWaitTimeInMs: 100 });
await consumer.connect();
await consumer.subscribe({ topic, fromBeginning: true });
let seen = 0;
const done = new Promise((resolve) => {
  consumer.run({
    autoCommit: true,
    eachBatchAutoResolve: false,
    eachBatch: async ({ batch, resolveOffset, commitOffsetsIfNecessary }) => {
      for (const m of batch.messages) {
        if (m.headers.h[1] !== 1) throw new Error('header bytes changed');
        resolveOffset(m.offset);
        seen++;
      }
      await commitOffsetsIfNecessary();
      if (seen === 100) resolve();
    },
  });
});
let timer;
await Promise.race([
  done,
  new Promise((_, rej) => (timer = setTimeout(() => rej(new Error(`timeout, seen ${seen}`)), 20000))),
]);
clearTimeout(timer);
await consumer.disconnect();
const committed = await admin.fetchOffsets({ groupId: `${topic}-g`, topics: [topic] });
const total = committed[0].partitions.reduce((a, p) => a + Number(p.offset), 0);
const groups = await admin.describeGroups([`${topic}-g`]);
const latest = await admin.fetchTopicOffsets(topic);
await admin.deleteTopics({ topics: [topic] });
await producer.disconnect();
await admin.disconnect();
console.log(
  `kafkajs OK: consumed ${seen}, committed ${total}, group state ${groups.groups[0].state}, high watermarks ${latest.map((p) => p.high).join(',')}`,
);
if (total !== 100) process.exit(1);
