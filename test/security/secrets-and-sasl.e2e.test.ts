// Secrets never leak, and SASL really authenticates. The worker process runs at LOG_LEVEL=debug with
// spans printed (OTEL_TRACES_EXPORTER=console) against a broker this test owns that only speaks
// SASL_PLAINTEXT, authenticating with SCRAM-SHA-512; the database URL carries a password too. After
// valid, invalid and failing requests, a dropped database connection, a wrong Kafka password, a
// configuration error and an unreachable database, neither known secret appears in any output, result,
// dead letter (value or headers), stored result or span.
import { randomBytes, randomUUID } from 'node:crypto';
import type { Producer } from 'kafkajs';
import pg from 'pg';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { TopicNames } from '../../src/contracts/topics.ts';
import { KafkaClient } from '../../src/messaging/kafka/client.ts';
import { createTopics } from '../../src/messaging/kafka/topic-admin.ts';
import { ADMIN_URL, createTestDatabase, type TestDatabase } from '../support/database.ts';
import { Collector, uniquePrefix } from '../support/kafka.ts';
import { startSaslKafka, type SaslKafka } from '../support/sasl-kafka.ts';
import { createTestCertificates, type TestCertificates } from '../support/tls.ts';
import { freePort, startWorker, type WorkerProcess } from '../support/worker-process.ts';

vi.setConfig({ testTimeout: 90_000 });

const DB_SECRET = `dbS3cret${randomBytes(6).toString('hex')}`;
const KAFKA_SECRET = `kafkaS3cret${randomBytes(6).toString('hex')}`;
const WRONG_SECRET = `wrongS3cret${randomBytes(6).toString('hex')}`;
const SECRETS = [DB_SECRET, KAFKA_SECRET, WRONG_SECRET];

let broker: SaslKafka;
let certs: TestCertificates;
let otherCa: TestCertificates;
let db: TestDatabase;
let names: TopicNames;
let producer: Producer;
let results: Collector;
const workers: WorkerProcess[] = [];
let env: Record<string, string>;

beforeAll(async () => {
  [certs, otherCa] = await Promise.all([createTestCertificates(), createTestCertificates()]);
  [broker, db] = await Promise.all([
    startSaslKafka({ worker: KAFKA_SECRET }, { cert: certs.serverCert, key: certs.serverKey, ca: certs.ca }),
    createTestDatabase(),
  ]);
  names = new TopicNames(uniquePrefix());
  const kafka = broker.kafka();
  // The worker's own admin client (PLAIN, as the broker's admin) creates the topics.
  const { username, password } = broker.admin as { username: string; password: string };
  const admin = new KafkaClient('sasl-test', {
    brokers: [broker.brokers],
    sasl: { mechanism: 'plain', username, password },
  }).admin();
  await admin.connect();
  await createTopics(admin, names, {
    requestPartitions: 1,
    resultPartitions: 1,
    dlqPartitions: 1,
    replicationFactor: 1,
  });
  await admin.disconnect();
  producer = kafka.producer();
  await producer.connect();
  results = await new Collector(
    kafka,
    names
      .all()
      .filter((t) => t.role !== 'request')
      .map((t) => t.name),
  ).start();
  // The shared server trusts loopback, so any password works: what matters is that the URL carries one.
  const url = new URL(db.url);
  url.password = DB_SECRET;
  env = {
    DATABASE_URL: url.toString(),
    KAFKA_BROKERS: broker.brokers,
    KAFKA_SASL_MECHANISM: 'scram-sha-512',
    KAFKA_SASL_USERNAME: 'worker',
    KAFKA_SASL_PASSWORD: KAFKA_SECRET,
    TOPIC_PREFIX: names.prefix,
    KAFKA_GROUP_ID: `${names.prefix}worker`,
    DB_POOL_MIN: '1',
    DB_POOL_MAX: '3',
    WORKER_RETRY_INITIAL_MS: '100',
    WORKER_RETRY_MAX_MS: '500',
    LOG_LEVEL: 'debug',
    OTEL_TRACES_EXPORTER: 'console',
  };
}, 120_000);
afterAll(async () => {
  await Promise.all(workers.map((w) => w.stop('SIGKILL')));
  await results?.stop().catch(() => undefined);
  await producer?.disconnect().catch(() => undefined);
  await db?.drop();
  await broker?.stop();
}, 60_000);

/** Runs a worker that is expected to fail, until it exits or `ms` pass. */
async function failingRun(
  extra: Record<string, string>,
  ms = 15_000,
  /** Stop waiting once the output says this (a loaded machine may take longer than usual to say it). */
  said?: RegExp,
): Promise<{ output: string; exit: number | string }> {
  const w = await startWorker({ ...env, ...extra });
  workers.push(w);
  const deadline = Date.now() + ms;
  while (w.child.exitCode === null && Date.now() < deadline && !said?.test(w.output()))
    await new Promise((r) => setTimeout(r, 100));
  const exit = await w.stop('SIGKILL');
  return { output: w.output(), exit };
}

const leaks = (where: string, text: string) =>
  SECRETS.filter((s) => text.includes(s)).map((s) => `${where} contains ${s.slice(0, 8)}…`);

it('authenticates with SCRAM-SHA-512 and keeps both secrets out of logs, results, dead letters and spans', async () => {
  const worker = await startWorker(env);
  workers.push(worker);
  await worker.waitReady(45_000);
  const id = randomUUID();
  const send = (topic: Parameters<TopicNames['request']>[0], values: (string | null)[]) =>
    producer.send({ topic: names.request(topic), acks: -1, messages: values.map((value) => ({ value })) });
  await send('pattern.insert', [
    JSON.stringify({
      correlation_id: randomUUID(),
      data: { pattern_id: id, pattern_name: 'Secretive', pattern_type: 'code', language: 'go' },
    }),
    '{"broken": ',
    JSON.stringify({ operation: 'update', pattern_id: randomUUID(), data: { description: 'x' } }),
  ]);
  await results.waitForCount(names.result('pattern.insert'), 3, 30_000);
  // A dropped connection makes the pool and the retry path log their errors.
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1', [db.name]);
  await admin.end();
  await send('pattern.usage', [
    JSON.stringify({ correlation_id: randomUUID(), pattern_id: id, usage_data: { success: true } }),
  ]);
  await send('pattern.search.request', [
    JSON.stringify({ operation: 'search', search_query: 'secretive' }),
    null,
  ]);
  await send('pattern.analytics.compute', [JSON.stringify({ operation: 'get_global_stats' })]);
  await results.waitFor(
    (all) => all.filter((m) => !m.topic.endsWith('.dlq')).length >= 7,
    30_000,
    'seven results',
  );
  expect(await worker.stop('SIGTERM')).toBe(0);
  const output = worker.output();

  // The runs that fail: a wrong Kafka password (authentication really is enforced), a configuration
  // error with every secret set, and a database that cannot be reached.
  const wrongPassword = await failingRun({
    KAFKA_SASL_PASSWORD: WRONG_SECRET,
    KAFKA_GROUP_ID: `${names.prefix}wrong`,
  });
  const badConfig = await failingRun({
    LOG_LEVEL: 'loud',
    DB_POOL_MAX: 'many',
    DATABASE_URL: `mysql://postgres:${DB_SECRET}@127.0.0.1/patterns`,
  });
  const closedPort = await freePort();
  const unreachable = await failingRun({
    DATABASE_URL: `postgres://postgres:${DB_SECRET}@127.0.0.1:${closedPort}/nowhere`,
  });

  const stored = await db.pool.query<{ result: unknown }>('SELECT result FROM processed_messages');
  const published = results.messages.map((m) =>
    JSON.stringify({
      value: m.value?.toString('latin1'),
      headers: Object.fromEntries(Object.entries(m.headers).map(([k, v]) => [k, String(v)])),
    }),
  );
  const found = [
    ...leaks('worker output', output),
    ...leaks('wrong-password run', wrongPassword.output),
    ...leaks('config-error run', badConfig.output),
    ...leaks('unreachable-database run', unreachable.output),
    ...leaks('published results and dead letters', published.join('\n')),
    ...leaks('stored results', JSON.stringify(stored.rows)),
  ];
  expect(found).toEqual([]);

  // The checks saw what they were meant to see.
  expect(output).toContain('"level":20'); // debug lines
  expect(output).toMatch(/db\.query\.text|pattern\.operation/); // printed spans and their attributes
  expect(results.on(names.dlq('pattern.insert')).length).toBeGreaterThanOrEqual(2);
  expect(wrongPassword.exit).not.toBe(0);
  expect(wrongPassword.output).toMatch(/authentication failed/i);
  expect(badConfig.output).toMatch(/LOG_LEVEL/);
  expect(badConfig.output).toMatch(/DB_POOL_MAX/);
  expect(badConfig.output).toMatch(/DATABASE_URL/);
  expect(unreachable.output).toMatch(/ECONNREFUSED|connect/i);
});

it('serves requests over SASL_SSL with mutual TLS and SCRAM-SHA-256 from the KAFKA_SSL_* files', async () => {
  const tlsEnv = {
    KAFKA_BROKERS: broker.tlsBrokers as string,
    KAFKA_SSL: 'true',
    KAFKA_SSL_CA_FILE: certs.ca,
    KAFKA_SSL_CERT_FILE: certs.clientCert,
    KAFKA_SSL_KEY_FILE: certs.clientKey,
    KAFKA_SASL_MECHANISM: 'scram-sha-256',
    KAFKA_GROUP_ID: `${names.prefix}tls`,
    LOG_LEVEL: 'info',
  };
  const worker = await startWorker({ ...env, ...tlsEnv });
  workers.push(worker);
  await worker.waitReady(45_000);
  const cid = randomUUID();
  await producer.send({
    topic: names.request('pattern.search.request'),
    messages: [{ value: JSON.stringify({ operation: 'get_top', correlation_id: cid }) }],
  });
  const answered = (all: typeof results.messages) =>
    all.filter(
      (m) =>
        !m.topic.endsWith('.dlq') &&
        m.json<{ metadata?: { correlation_id?: string } }>().metadata?.correlation_id === cid,
    );
  const [answer] = answered(
    await results.waitFor((all) => answered(all).length > 0, 30_000, 'the answer over TLS'),
  );
  expect(answer?.json<{ success: boolean }>().success).toBe(true);
  expect(await worker.stop('SIGTERM')).toBe(0);

  // A CA that did not sign the broker's certificate: the worker never gets in.
  const wrongCa = await failingRun(
    { ...tlsEnv, KAFKA_SSL_CA_FILE: otherCa.ca, KAFKA_GROUP_ID: `${names.prefix}tls2` },
    // 8 s was not always enough while the whole suite ran beside it (the log said nothing yet).
    30_000,
    /certificate/i,
  );
  expect(wrongCa.output).toMatch(/certificate/i);
  expect(wrongCa.output).not.toContain('worker started');
  expect([...leaks('TLS worker output', worker.output()), ...leaks('wrong-CA run', wrongCa.output)]).toEqual(
    [],
  );
});
