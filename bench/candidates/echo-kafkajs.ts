// Echo on kafkajs 2.2.4 (classic protocol, eager rebalancing), the same behaviour as echo-platformatic.ts:
// answers each request on the reply topic (same partition number, correlation id header copied) with an
// idempotent producer (acks from all replicas) and commits a partition only up to what it has answered
// (autoCommit off, explicit commitOffsets after the send). The worker's session settings (30 s session,
// 3 s heartbeat; ECHO_SESSION_TIMEOUT_MS changes the session, the heartbeat is a tenth of it). Prints "ready" on every group join. SIGTERM: kafkajs lets the running batch finish, then
// leaves the group. bench/baselines/kafka-echo.ts does not fit: it auto-commits on an interval and answers
// per the request's reply headers.
import { Kafka, logLevel } from 'kafkajs';
import { CORRELATION_HEADER, echoEnv, log } from './echo-common.ts';

const env = echoEnv();
// The worker's KAFKA_SESSION_TIMEOUT_MS (default 30 s) and its heartbeat (a tenth of it).
const sessionTimeoutMs = Number(process.env.ECHO_SESSION_TIMEOUT_MS ?? 30_000);
const kafka = new Kafka({ clientId: env.name, brokers: env.brokers, logLevel: logLevel.NOTHING });
const consumer = kafka.consumer({
  groupId: env.groupId,
  maxWaitTimeInMs: 100,
  sessionTimeout: sessionTimeoutMs,
  heartbeatInterval: Math.floor(sessionTimeoutMs / 10),
  rebalanceTimeout: 60_000,
  allowAutoTopicCreation: false,
});
const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
let answered = 0;
let crashes = 0;

await producer.connect();
await consumer.connect();
await consumer.subscribe({ topics: [env.requestTopic], fromBeginning: true });
consumer.on(consumer.events.GROUP_JOIN, (e) => {
  process.stdout.write('ready\n');
  log(env.name, 'joined', { assignment: e.payload.memberAssignment });
});
consumer.on(consumer.events.REBALANCING, () => log(env.name, 'rebalancing'));
consumer.on(consumer.events.CRASH, (e) => {
  crashes += 1;
  log(env.name, `crashed (restart: ${String(e.payload.restart)})`, e.payload.error);
});
await consumer.run({
  autoCommit: false,
  partitionsConsumedConcurrently: 12,
  eachBatch: async (payload) => {
    const { batch } = payload;
    if (!payload.isRunning() || payload.isStale()) return;
    const messages = batch.messages;
    const last = messages[messages.length - 1];
    if (!last) return;
    await producer.send({
      acks: -1,
      topic: env.replyTopic,
      messages: messages.map((m) => {
        const corr = m.headers?.[CORRELATION_HEADER];
        return {
          partition: batch.partition,
          key: m.key,
          value: m.value,
          headers: corr === undefined ? {} : { [CORRELATION_HEADER]: corr },
        };
      }),
    });
    answered += messages.length;
    await consumer.commitOffsets([
      { topic: batch.topic, partition: batch.partition, offset: (BigInt(last.offset) + 1n).toString() },
    ]);
    await payload.heartbeat();
  },
});

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  const t0 = Date.now();
  await consumer.disconnect().catch(() => undefined);
  await producer.disconnect().catch(() => undefined);
  log(env.name, 'stopped', { ms: Date.now() - t0, answered, crashes });
  process.exit(0);
};
process.once('SIGTERM', () => void stop());
process.once('SIGINT', () => void stop());
