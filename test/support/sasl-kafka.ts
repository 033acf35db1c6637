// A Kafka broker that only speaks SASL_PLAINTEXT (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512), owned by one test
// file. It reuses the jars scripts/kafka.sh fetched (the shared broker's start in CI guarantees them) and
// writes its own server.properties, since kafka.sh only knows PLAINTEXT. Loopback only.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Kafka, logLevel, type SASLOptions } from 'kafkajs';
import { freePort } from './worker-process.ts';

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '../..');
const LIB = join(ROOT, '.cache/kafka', process.env.KAFKA_VERSION ?? '4.4.0', 'lib');
const LOG4J = join(ROOT, 'scripts/kafka/log4j2.yaml');

export interface SaslKafka {
  brokers: string;
  /** The SASL_SSL listener (TLS with a required client certificate), when started with `tls`. */
  tlsBrokers: string | undefined;
  /** Admin credentials (PLAIN) for the test's own clients. */
  admin: SASLOptions;
  kafka(clientId?: string): Kafka;
  stop(): Promise<void>;
}

function java(args: string[], logs: string): string[] {
  return [
    '-Xms128m',
    '-Xmx512m',
    '-Djava.awt.headless=true',
    `-Dkafka.logs.dir=${logs}`,
    `-Dlog4j2.configurationFile=${LOG4J}`,
    '-cp',
    `${LIB}/*`,
    ...args,
  ];
}

export interface BrokerTls {
  /** PEM files: the server's certificate and key, and the CA that client certificates must chain to. */
  cert: string;
  key: string;
  ca: string;
}

/**
 * Starts the broker with `users` (name -> password) for every mechanism; with `tls`, also a SASL_SSL
 * listener that requires a client certificate. Takes ~5-15 s.
 */
export async function startSaslKafka(users: Record<string, string>, tls?: BrokerTls): Promise<SaslKafka> {
  const home = await mkdtemp(join(tmpdir(), 'pw-sasl-kafka-'));
  const data = join(home, 'data');
  const logs = join(home, 'logs');
  await mkdir(logs, { recursive: true });
  const port = await freePort();
  let controller = await freePort();
  while (controller === port) controller = await freePort();
  const adminPassword = `admin-${Math.random().toString(36).slice(2)}`;
  const plainUsers = Object.entries({ admin: adminPassword, ...users })
    .map(([u, p]) => `user_${u}="${p}"`)
    .join(' ');
  const tlsPort = tls ? await freePort() : undefined;
  const listeners = [
    `SASL_PLAINTEXT://127.0.0.1:${port}`,
    ...(tls ? [`SASL_SSL://127.0.0.1:${tlsPort}`] : []),
  ];
  const tlsProps: string[] = [];
  if (tls) {
    // Kafka reads PEM key stores: one file with the private key (unencrypted PKCS#8) and the certificate.
    const keystore = join(home, 'server.pem');
    await writeFile(keystore, (await readFile(tls.key, 'utf8')) + (await readFile(tls.cert, 'utf8')));
    tlsProps.push(
      'ssl.keystore.type=PEM',
      `ssl.keystore.location=${keystore}`,
      'ssl.truststore.type=PEM',
      `ssl.truststore.location=${tls.ca}`,
      // On SASL_SSL listeners only the listener-prefixed setting counts (KIP-684).
      'listener.name.sasl_ssl.ssl.client.auth=required',
      `listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required ${plainUsers};`,
      'listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;',
      'listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;',
    );
  }
  const props = join(home, 'server.properties');
  await writeFile(
    props,
    [
      'process.roles=broker,controller',
      'node.id=1',
      `controller.quorum.bootstrap.servers=127.0.0.1:${controller}`,
      `listeners=${[...listeners, `CONTROLLER://127.0.0.1:${controller}`].join(',')}`,
      `advertised.listeners=${listeners.join(',')}`,
      'controller.listener.names=CONTROLLER',
      'inter.broker.listener.name=SASL_PLAINTEXT',
      'listener.security.protocol.map=CONTROLLER:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL',
      'sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512',
      'sasl.mechanism.inter.broker.protocol=PLAIN',
      `listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="${adminPassword}" ${plainUsers};`,
      'listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;',
      'listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;',
      `log.dirs=${data}`,
      'num.partitions=1',
      'offsets.topic.replication.factor=1',
      'offsets.topic.num.partitions=3',
      'transaction.state.log.replication.factor=1',
      'transaction.state.log.min.isr=1',
      'share.coordinator.state.topic.replication.factor=1',
      'group.initial.rebalance.delay.ms=0',
      'group.consumer.heartbeat.interval.ms=100',
      'group.consumer.min.heartbeat.interval.ms=50',
      'group.consumer.assignment.interval.ms=0',
      'group.consumer.session.timeout.ms=10000',
      'group.consumer.min.session.timeout.ms=6000',
      'auto.create.topics.enable=false',
      'num.network.threads=2',
      'num.io.threads=2',
      ...tlsProps,
      '',
    ].join('\n'),
  );
  const scram = Object.entries(users).flatMap(([u, p]) => [
    '--add-scram',
    `SCRAM-SHA-256=[name=${u},password=${p}]`,
    '--add-scram',
    `SCRAM-SHA-512=[name=${u},password=${p}]`,
  ]);
  const id = (await run('java', java(['kafka.tools.StorageTool', 'random-uuid'], logs))).stdout.trim();
  await run(
    'java',
    java(['kafka.tools.StorageTool', 'format', '--standalone', '-t', id, '-c', props, ...scram], logs),
    {
      timeout: 60_000,
    },
  );
  const child: ChildProcess = spawn('java', java(['kafka.Kafka', props], logs), { stdio: 'ignore' });
  const brokers = `127.0.0.1:${port}`;
  const admin: SASLOptions = { mechanism: 'plain', username: 'admin', password: adminPassword };
  const broker: SaslKafka = {
    brokers,
    tlsBrokers: tls ? `127.0.0.1:${tlsPort}` : undefined,
    admin,
    kafka: (clientId = 'sasl-test') =>
      new Kafka({
        clientId,
        brokers: [brokers],
        sasl: admin,
        logLevel: logLevel.NOTHING,
        retry: { retries: 10 },
      }),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGKILL');
        await exited;
      }
      await rm(home, { recursive: true, force: true });
    },
  };
  // Ready when an authenticated admin can list topics.
  const deadline = Date.now() + 90_000;
  for (;;) {
    const probe = new Kafka({
      clientId: 'probe',
      brokers: [brokers],
      sasl: admin,
      logLevel: logLevel.NOTHING,
      retry: { retries: 0 },
    }).admin();
    try {
      await probe.connect();
      await probe.listTopics();
      await probe.disconnect();
      return broker;
    } catch {
      await probe.disconnect().catch(() => undefined);
      if (child.exitCode !== null || Date.now() > deadline) {
        await broker.stop();
        throw new Error(`SASL broker did not start (see ${logs})`);
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}
