// A Kafka broker a test owns (scripts/kafka.sh with its own ports and directory), so the test may stop and
// start it. The shared broker at 9092 must never be touched. Starting takes ~15 s on this machine.
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './worker-process.ts';

const run = promisify(execFile);
const SCRIPT = join(import.meta.dirname, '../../scripts/kafka.sh');

export interface OwnKafka {
  brokers: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Stops the broker and removes its data. */
  destroy(): Promise<void>;
}

export async function startOwnKafka(): Promise<OwnKafka> {
  const home = await mkdtemp(join(tmpdir(), 'pw-kafka-'));
  const port = await freePort();
  let controller = await freePort();
  while (controller === port) controller = await freePort();
  const env = {
    ...process.env,
    KAFKA_PORT: String(port),
    KAFKA_CONTROLLER_PORT: String(controller),
    KAFKA_HOME_DIR: home,
    KAFKA_HEAP: '-Xms128m -Xmx512m',
  };
  const script = (command: string) => run('bash', [SCRIPT, command], { env, timeout: 150_000 });
  const kafka: OwnKafka = {
    brokers: `127.0.0.1:${port}`,
    start: async () => void (await script('start')),
    stop: async () => void (await script('stop')),
    async destroy() {
      await script('stop').catch(() => undefined);
      await rm(home, { recursive: true, force: true });
    },
  };
  try {
    await kafka.start();
  } catch (err) {
    await kafka.destroy();
    throw err;
  }
  return kafka;
}
