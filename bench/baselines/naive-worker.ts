// Baseline "naive worker": what a typical first implementation does. kafkajs eachMessage, one
// PostgreSQL transaction per message (identity record + event; a per-row trigger does the statistics,
// see naive-schema.ts), then one awaited result send per message. Run as a process:
//   DATABASE_URL=... KAFKA_BROKERS=... TOPIC_PREFIX=... KAFKA_GROUP_ID=... node bench/baselines/naive-worker.ts
import { Kafka, logLevel } from 'kafkajs';
import pg from 'pg';

const prefix = process.env.TOPIC_PREFIX ?? '';
const kafka = new Kafka({
  clientId: 'naive-worker',
  brokers: (process.env.KAFKA_BROKERS || '127.0.0.1:9092').split(','),
  logLevel: logLevel.NOTHING,
});
const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 2 });
const consumer = kafka.consumer({
  groupId: process.env.KAFKA_GROUP_ID ?? 'naive-worker',
  maxWaitTimeInMs: 100,
});
const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
const resultTopic = `${prefix}pattern.usage.result`;

interface UsageRequest {
  pattern_id: string;
  usage_data: {
    file_path?: string;
    project_id?: string;
    success: boolean;
    execution_time_ms?: number;
    error_message?: string;
    quality_before?: number;
    quality_after?: number;
    tags?: string[];
    used_at?: string;
  };
}

await producer.connect();
await consumer.connect();
await consumer.subscribe({ topic: `${prefix}pattern.usage`, fromBeginning: true });
consumer.on(consumer.events.GROUP_JOIN, () => console.log('naive worker ready'));
await consumer.run({
  eachMessage: async ({ topic, partition, message }) => {
    const identity = `${topic}/${partition}/${message.offset}`;
    let result: Record<string, unknown>;
    const client = await pool.connect();
    try {
      const request = JSON.parse(message.value?.toString('utf8') ?? 'null') as UsageRequest;
      const u = request.usage_data;
      await client.query('BEGIN');
      await client.query(
        `INSERT INTO processed_messages (identity, topic, operation, source_partition, source_offset, result)
         VALUES ($1, 'pattern.usage', 'record_usage', $2, $3, '{}')`,
        [identity, partition, message.offset],
      );
      const { rows } = await client.query(
        `INSERT INTO pattern_usage_events (pattern_id, file_path, project_id, success, execution_time_ms, error_message,
                                           quality_before, quality_after, tags, used_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, coalesce($10::timestamptz, now()))
         RETURNING id AS event_id, pattern_id, used_at, quality_improvement`,
        [
          request.pattern_id,
          u.file_path ?? null,
          u.project_id ?? null,
          u.success,
          u.execution_time_ms ?? null,
          u.error_message ?? null,
          u.quality_before ?? null,
          u.quality_after ?? null,
          u.tags ?? [],
          u.used_at ?? null,
        ],
      );
      await client.query('COMMIT');
      result = { success: true, data: rows[0], error: null, metadata: { operation: 'record_usage' } };
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      result = {
        success: false,
        data: null,
        error: { code: 'INTERNAL_ERROR', message: String(err) },
        metadata: { operation: 'record_usage' },
      };
    } finally {
      client.release();
    }
    await producer.send({
      topic: resultTopic,
      acks: -1,
      messages: [{ key: message.key, value: JSON.stringify(result) }],
    });
  },
});

const stop = async () => {
  await consumer.disconnect().catch(() => undefined);
  await producer.disconnect().catch(() => undefined);
  await pool.end().catch(() => undefined);
  process.exit(0);
};
process.once('SIGTERM', () => void stop());
process.once('SIGINT', () => void stop());
