// npm run demo: the seed's four README examples through Kafka request/reply against a worker started
// here, with the results printed. Needs the stack up: Kafka (npm run kafka:start) and PostgreSQL.
// Uses its own database (pattern_worker_demo, recreated each run) and topic prefix (demo.), so it
// touches nothing else.
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { startWorkerApp } from '../src/app.ts';
import { PatternClient } from '../src/client/index.ts';
import { loadConfig } from '../src/config.ts';
import { TopicNames } from '../src/contracts/topics.ts';
import { createPool } from '../src/db/pool.ts';
import { migrate } from '../src/db/migrate.ts';
import { createKafka, kafkaConnection } from '../src/messaging/kafka/client.ts';
import { createTopics } from '../src/messaging/kafka/topic-admin.ts';
import { createLogger } from '../src/telemetry/logger.ts';

const DEMO_DB = 'pattern_worker_demo';
const serverUrl = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const demoUrl = new URL(serverUrl);
demoUrl.pathname = `/${DEMO_DB}`;

const config = loadConfig({
  ...process.env,
  DATABASE_URL: demoUrl.toString(),
  TOPIC_PREFIX: process.env.TOPIC_PREFIX ?? 'demo.',
  KAFKA_GROUP_ID: 'pattern-worker-demo',
  PORT: '0',
});
const logger = createLogger(process.env.LOG_LEVEL ?? 'warn');
const step = (title: string) => process.stdout.write(`\n\x1b[1m${title}\x1b[0m\n`);
const show = (value: unknown) => process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);

async function prepare(): Promise<void> {
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  // A fresh database each run, so the seed's examples give the seed's values every time.
  await admin.query(`DROP DATABASE IF EXISTS ${DEMO_DB} WITH (FORCE)`);
  await admin.query(`CREATE DATABASE ${DEMO_DB}`);
  await admin.end();
  const pool = createPool({ connectionString: config.DATABASE_URL, min: 0, max: 2 });
  await migrate(pool);
  await pool.end();
  const kafkaAdmin = createKafka(config).admin();
  await kafkaAdmin.connect();
  await createTopics(kafkaAdmin, new TopicNames(config.TOPIC_PREFIX), {
    requestPartitions: 3,
    resultPartitions: 3,
    dlqPartitions: 1,
    replicationFactor: 1,
    replyPartitions: 3,
  });
  await kafkaAdmin.disconnect();
}

async function main(): Promise<void> {
  step(`Preparing database ${DEMO_DB} and topics ${config.TOPIC_PREFIX}pattern.*`);
  await prepare();
  const worker = await startWorkerApp({ config, logger });
  const client = new PatternClient({
    connection: kafkaConnection(config),
    topicPrefix: config.TOPIC_PREFIX,
    timeoutMs: 30_000,
  });
  await client.connect();
  let failed: boolean;
  try {
    step('1. Insert AsyncDatabaseWriterPattern (python, confidence 0.92)');
    const inserted = await client.insert({
      data: {
        pattern_id: randomUUID(),
        pattern_name: 'AsyncDatabaseWriterPattern',
        pattern_type: 'code',
        language: 'python',
        category: 'database',
        description: 'Writes rows to a database asynchronously with a connection pool',
        template_code:
          'async def write(pool, row):\n    async with pool.acquire() as conn:\n        await conn.execute(...)',
        confidence_score: 0.92,
        tags: ['async', 'database', 'writer'],
      },
    });
    show(inserted);
    const patternId = inserted.data?.pattern_id;
    if (!inserted.success || !patternId) throw new Error('insert failed');

    step('2. Search "async database" (language python, min_confidence_score 0.8)');
    const found = await client.search({
      search_query: 'async database',
      filters: { language: 'python', min_confidence_score: 0.8 },
      limit: 3,
    });
    show(found);

    step('3. Record usage: quality 0.65 -> 0.88');
    const used = await client.recordUsage({
      pattern_id: patternId,
      usage_data: { success: true, quality_before: 0.65, quality_after: 0.88, execution_time_ms: 42 },
    });
    show(used);

    step('4. Compute 30-day analytics for the pattern');
    const analytics = await client.computeAnalytics({ pattern_id: patternId });
    show(analytics);

    failed = ![found, used, analytics].every((r) => r.success);
  } finally {
    await client.close();
    await worker.stop();
  }
  step(
    failed ? 'Demo finished with a failed result.' : 'Demo finished: four requests, four correlated results.',
  );
  process.exitCode = failed ? 1 : 0;
}

await main();
