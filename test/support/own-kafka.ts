// A Kafka broker a test owns (scripts/kafka.sh with its own ports and directory), so the test may stop and
// start it. The shared broker at 9092 must never be touched. Starting takes ~15 s on this machine.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createConnection } from 'node:net';
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
  /** SIGKILLs the broker's processes (a crash: no controlled shutdown) and waits until its port is closed. */
  kill(): Promise<void>;
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
    async kill() {
      // scripts/kafka.sh records the pid of the shell that runs the JVM; the JVM is its child.
      const shell = Number((await readFile(join(home, 'kafka.pid'), 'utf8')).trim());
      const { stdout } = await run('ps', ['-o', 'pid=', '--ppid', String(shell)]).catch(() => ({
        stdout: '',
      }));
      const pids = [...stdout.split(/\s+/).filter(Boolean).map(Number), shell];
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      const deadline = Date.now() + 30_000;
      while (await listening(port)) {
        if (Date.now() > deadline) throw new Error(`broker on ${port} still listens after SIGKILL`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
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

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
