// The machine a run happened on, written beside every table.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism, totalmem } from 'node:os';
import pg from 'pg';
import { ADMIN_URL } from './db.ts';

export interface Machine {
  date: string;
  cpus: number;
  cpuModel: string;
  ramGiB: number;
  node: string;
  postgres: string;
  kafka: string;
  kernel: string;
}

function cpuModel(): string {
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('model name'));
    return line?.split(':')[1]?.trim() ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

function kafkaVersion(): string {
  // scripts/kafka.sh runs the broker from .cache/kafka/<version>/lib.
  try {
    const ps = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' });
    const m = /kafka\/(\d+\.\d+\.\d+)\/lib/.exec(ps) ?? /kafka_[\d.]+-([\d.]+)\.jar/.exec(ps);
    return m?.[1] ?? (process.env.KAFKA_VERSION || 'unknown');
  } catch {
    return 'unknown';
  }
}

export async function describeMachine(): Promise<Machine> {
  let postgres = 'unknown';
  const client = new pg.Client({ connectionString: ADMIN_URL });
  try {
    await client.connect();
    const { rows } = await client.query<{ server_version: string }>('SHOW server_version');
    postgres = rows[0]?.server_version ?? postgres;
  } catch {
    // reported as unknown
  } finally {
    await client.end().catch(() => undefined);
  }
  let kernel = 'unknown';
  try {
    kernel = readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim();
  } catch {
    // not Linux
  }
  return {
    date: new Date().toISOString(),
    cpus: availableParallelism(),
    cpuModel: cpuModel(),
    ramGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    postgres,
    kafka: kafkaVersion(),
    kernel,
  };
}

/** Short enough for a chart's subtitle. */
export function machineShort(m: Machine): string {
  return `${m.date.slice(0, 16).replace('T', ' ')} UTC · ${m.cpus} cores · ${m.ramGiB} GiB · PostgreSQL ${m.postgres.split(' ')[0]} · Kafka ${m.kafka} · Node ${m.node}`;
}

export function machineLine(m: Machine): string {
  return `${m.date.slice(0, 16).replace('T', ' ')} UTC · ${m.cpus} cores (${m.cpuModel}) · ${m.ramGiB} GiB RAM · Node ${m.node} · PostgreSQL ${m.postgres} · Kafka ${m.kafka}`;
}
