// Baseline "Kafka floor": the worker's request/reply path with no database. Consumes the search request
// topic with the worker's consumer settings and answers every request on the reply topic and partition
// it names, with its correlation id, using an idempotent producer with acks from all replicas.
//   KAFKA_BROKERS=... TOPIC_PREFIX=... KAFKA_GROUP_ID=... node bench/baselines/kafka-echo.ts
import { Kafka, logLevel, type Message } from 'kafkajs';

const prefix = process.env.TOPIC_PREFIX ?? '';
const kafka = new Kafka({
  clientId: 'kafka-echo',
  brokers: (process.env.KAFKA_BROKERS || '127.0.0.1:9092').split(','),
  logLevel: logLevel.NOTHING,
});
const consumer = kafka.consumer({
  groupId: process.env.KAFKA_GROUP_ID ?? 'kafka-echo',
  maxWaitTimeInMs: 100,
});
const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });

await producer.connect();
await consumer.connect();
await consumer.subscribe({ topic: `${prefix}pattern.search.request`, fromBeginning: false });
consumer.on(consumer.events.GROUP_JOIN, () => console.log('kafka echo ready'));
await consumer.run({
  partitionsConsumedConcurrently: 4,
  eachBatch: async (payload) => {
    const { batch } = payload;
    const byTopic = new Map<string, Message[]>();
    for (const m of batch.messages) {
      const h = m.headers ?? {};
      const replyTopic = h.kafka_replyTopic?.toString() ?? `${prefix}pattern.search.result`;
      const rp = h.kafka_replyPartition;
      const partition = Buffer.isBuffer(rp) && rp.length === 4 ? rp.readInt32BE(0) : undefined;
      const body = JSON.parse(m.value?.toString('utf8') ?? '{}') as {
        correlation_id?: string;
        operation?: string;
      };
      const reply: Message = {
        value: JSON.stringify({
          success: true,
          data: [],
          error: null,
          metadata: {
            correlation_id: body.correlation_id ?? null,
            operation: body.operation ?? 'search',
            node: 'echo',
            duration_ms: 0,
          },
        }),
        headers: h.kafka_correlationId ? { kafka_correlationId: h.kafka_correlationId } : {},
        ...(partition === undefined ? {} : { partition }),
      };
      byTopic.set(replyTopic, [...(byTopic.get(replyTopic) ?? []), reply]);
    }
    await producer.sendBatch({
      acks: -1,
      topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })),
    });
    const last = batch.messages[batch.messages.length - 1];
    if (last) payload.resolveOffset(last.offset);
    await payload.heartbeat();
  },
});

const stop = async () => {
  await consumer.disconnect().catch(() => undefined);
  await producer.disconnect().catch(() => undefined);
  process.exit(0);
};
process.once('SIGTERM', () => void stop());
process.once('SIGINT', () => void stop());
