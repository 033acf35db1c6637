// A throwaway PostgreSQL cluster a test owns: it may stop and start it at will, unlike the shared server.
// initdb/pg_ctl run as the `postgres` OS user (PostgreSQL refuses to run as root), in a temp directory,
// listening on a free loopback port with trust authentication.
import { execFile } from 'node:child_process';
import { chown, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { freePort } from './worker-process.ts';

const run = promisify(execFile);
const BIN = process.env.PG_BIN_DIR ?? '/usr/lib/postgresql/15/bin';

async function asPostgres(command: string, args: string[]): Promise<string> {
  const asRoot = process.getuid?.() === 0;
  const [file, argv] = asRoot
    ? ['runuser', ['-u', 'postgres', '--', join(BIN, command), ...args]]
    : [join(BIN, command), args];
  const { stdout } = await run(file, argv, { timeout: 60_000 });
  return stdout;
}

export interface PgCluster {
  port: number;
  dir: string;
  /** A connection URL for a database on this cluster (user postgres unless given). */
  url(database: string, user?: string): string;
  createDatabase(name: string): Promise<void>;
  start(): Promise<void>;
  /** `immediate` is a crash: connections drop without goodbye. */
  stop(mode?: 'immediate' | 'fast'): Promise<void>;
  destroy(): Promise<void>;
}

export interface PgClusterOptions {
  /** Replaces pg_hba.conf before the first start (e.g. to allow TLS connections only). */
  hba?: string;
  /** Runs with the data directory created, before the first start (e.g. to put certificates there). */
  prepare?: (dir: string) => Promise<void>;
}

export async function createPgCluster(
  settings: Record<string, string> = {},
  clusterOptions: PgClusterOptions = {},
): Promise<PgCluster> {
  const dir = await mkdtemp(join(tmpdir(), 'pw-pg-'));
  const uid = Number((await run('id', ['-u', 'postgres'])).stdout.trim());
  const gid = Number((await run('id', ['-g', 'postgres'])).stdout.trim());
  if (process.getuid?.() === 0) await chown(dir, uid, gid);
  const data = join(dir, 'data');
  const port = await freePort();
  await asPostgres('initdb', ['-D', data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--no-sync']);
  const options = {
    port: String(port),
    listen_addresses: '127.0.0.1',
    unix_socket_directories: dir,
    fsync: 'off',
    full_page_writes: 'off',
    shared_buffers: '32MB',
    max_connections: '50',
    ...settings,
  };
  const o = Object.entries(options)
    .map(([k, v]) => `-c ${k}=${v}`)
    .join(' ');
  const cluster: PgCluster = {
    port,
    dir,
    url: (database, user = 'postgres') => `postgres://${user}@127.0.0.1:${port}/${database}`,
    async createDatabase(name) {
      const client = new pg.Client({ connectionString: cluster.url('postgres') });
      await client.connect();
      try {
        await client.query(`CREATE DATABASE ${name}`);
      } finally {
        await client.end();
      }
    },
    async start() {
      await asPostgres('pg_ctl', [
        '-D',
        data,
        '-o',
        o,
        '-l',
        join(dir, 'server.log'),
        '-w',
        '-t',
        '60',
        'start',
      ]);
    },
    async stop(mode = 'immediate') {
      await asPostgres('pg_ctl', ['-D', data, '-m', mode, '-w', '-t', '60', 'stop']);
    },
    async destroy() {
      await cluster.stop('immediate').catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
  if (clusterOptions.hba !== undefined) {
    await writeFile(join(data, 'pg_hba.conf'), clusterOptions.hba);
  }
  await clusterOptions.prepare?.(dir);
  if (process.getuid?.() === 0) await run('chown', ['-R', 'postgres:postgres', dir]);
  await cluster.start();
  return cluster;
}
