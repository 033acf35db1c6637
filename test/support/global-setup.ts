// Decides where the real broker and database come from, once per test run:
// KAFKA_BROKERS / DATABASE_URL when set; else containers when a Docker engine answers; else local services.
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import net from 'node:net';

const LOCAL_KAFKA = '127.0.0.1:9092';
const LOCAL_DATABASE = 'postgres://postgres@127.0.0.1:5432/postgres';

function dockerReachable(): boolean {
  return Boolean(process.env.DOCKER_HOST) || existsSync('/var/run/docker.sock');
}

function canConnect(hostPort: string, timeoutMs = 2_000): Promise<boolean> {
  const [host, port] = hostPort.split(':');
  return new Promise((resolve) => {
    const socket = net.connect({ host, port: Number(port) });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

async function startContainers(): Promise<() => Promise<void>> {
  const { KafkaContainer } = await import('@testcontainers/kafka');
  const { PostgreSqlContainer } = await import('@testcontainers/postgresql');
  const [kafka, postgres] = await Promise.all([
    new KafkaContainer('apache/kafka:4.1.1')
      .withKraft()
      // The KIP-848 group settings of scripts/kafka.sh (README "Consumer groups").
      .withEnvironment({
        KAFKA_GROUP_CONSUMER_HEARTBEAT_INTERVAL_MS: '100',
        KAFKA_GROUP_CONSUMER_MIN_HEARTBEAT_INTERVAL_MS: '50',
        KAFKA_GROUP_CONSUMER_ASSIGNMENT_INTERVAL_MS: '0',
        KAFKA_GROUP_CONSUMER_SESSION_TIMEOUT_MS: '10000',
        KAFKA_GROUP_CONSUMER_MIN_SESSION_TIMEOUT_MS: '6000',
      })
      .start(),
    new PostgreSqlContainer('postgres:15').start(),
  ]);
  process.env.KAFKA_BROKERS = `${kafka.getHost()}:${kafka.getMappedPort(9093)}`;
  process.env.DATABASE_URL = postgres.getConnectionUri();
  return async () => {
    await Promise.all([kafka.stop(), postgres.stop()]);
  };
}

export default async function setup(project: TestProject): Promise<(() => Promise<void>) | void> {
  if (project.config.coverage.enabled) {
    // Child processes (workers, CLI) write their own V8 coverage; see scripts/coverage-merge.ts.
    const dir = join(project.config.root, 'coverage', 'children');
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    process.env.CHILD_COVERAGE_DIR = dir;
  }
  if (!process.env.KAFKA_BROKERS && !process.env.DATABASE_URL && dockerReachable()) {
    return startContainers();
  }
  process.env.KAFKA_BROKERS ||= LOCAL_KAFKA;
  process.env.DATABASE_URL ||= LOCAL_DATABASE;
  const firstBroker = process.env.KAFKA_BROKERS.split(',')[0] ?? LOCAL_KAFKA;
  if (!(await canConnect(firstBroker))) {
    throw new Error(
      `No Kafka broker answers at ${firstBroker}. Start the local one with "npm run kafka:start" ` +
        '(or set KAFKA_BROKERS).',
    );
  }
}
