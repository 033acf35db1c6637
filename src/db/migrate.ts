// Ordered SQL migrations from sql/, applied once each under an advisory lock, with a checksum check so
// that an edited, already-applied migration is an error rather than a silent divergence.
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { Pool, PoolClient } from './pool.ts';

export const DEFAULT_MIGRATIONS_DIR = fileURLToPath(new URL('../../sql/', import.meta.url));

// Any constant works; it only has to be the same for every replica of this worker.
const MIGRATION_LOCK_KEY = 0x70617474; // "patt"
const FILE_PATTERN = /^(\d{3,})_([a-z0-9_]+)\.sql$/;

export interface Migration {
  version: string;
  name: string;
  checksum: string;
  sql: string;
}

export interface MigrationReport {
  applied: string[];
  alreadyApplied: string[];
}

export class MigrationError extends Error {
  override name = 'MigrationError';
}

export async function loadMigrations(dir: string = DEFAULT_MIGRATIONS_DIR): Promise<Migration[]> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.sql')).sort();
  const migrations: Migration[] = [];
  for (const file of files) {
    const match = FILE_PATTERN.exec(file);
    if (!match) throw new MigrationError(`migration file name "${file}" must look like 001_name.sql`);
    const sql = (await readFile(`${dir}/${file}`, 'utf8')).replace(/\r\n/g, '\n');
    const version = match[1] as string;
    if (migrations.some((m) => m.version === version)) {
      throw new MigrationError(`two migration files share version ${version}`);
    }
    migrations.push({
      version,
      name: match[2] as string,
      checksum: createHash('sha256').update(sql).digest('hex'),
      sql,
    });
  }
  return migrations;
}

async function ensureTable(client: PoolClient): Promise<void> {
  await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version text PRIMARY KEY,
    name text NOT NULL,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
  )`);
}

async function appliedChecksums(client: PoolClient): Promise<Map<string, string>> {
  const { rows } = await client.query<{ version: string; checksum: string }>(
    'SELECT version, checksum FROM schema_migrations',
  );
  return new Map(rows.map((r) => [r.version, r.checksum]));
}

function verifyChecksums(migrations: Migration[], applied: Map<string, string>): void {
  for (const m of migrations) {
    const stored = applied.get(m.version);
    if (stored !== undefined && stored !== m.checksum) {
      throw new MigrationError(
        `migration ${m.version}_${m.name}.sql was edited after it was applied (checksum ${stored.slice(0, 12)}… ` +
          `in the database, ${m.checksum.slice(0, 12)}… on disk); add a new migration instead`,
      );
    }
  }
}

/** Applies every pending migration. Safe to call from many processes at once. */
export async function migrate(pool: Pool, dir: string = DEFAULT_MIGRATIONS_DIR): Promise<MigrationReport> {
  const migrations = await loadMigrations(dir);
  const client = await pool.connect();
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    try {
      await ensureTable(client);
      const applied = await appliedChecksums(client);
      verifyChecksums(migrations, applied);
      const report: MigrationReport = { applied: [], alreadyApplied: [] };
      for (const m of migrations) {
        const label = `${m.version}_${m.name}`;
        if (applied.has(m.version)) {
          report.alreadyApplied.push(label);
          continue;
        }
        try {
          await client.query('BEGIN');
          await client.query(m.sql);
          await client.query('INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)', [
            m.version,
            m.name,
            m.checksum,
          ]);
          await client.query('COMMIT');
        } catch (err) {
          await client.query('ROLLBACK').catch(() => undefined);
          const reason = err instanceof Error ? err.message : String(err);
          throw new MigrationError(`migration ${label}.sql failed: ${reason}`, { cause: err });
        }
        report.applied.push(label);
      }
      return report;
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]);
    }
  } finally {
    client.release();
  }
}

export interface MigrationStatus {
  current: boolean;
  pending: string[];
}

/** For readiness: are all migrations on disk applied, with matching checksums? */
export async function migrationStatus(
  pool: Pool,
  dir: string = DEFAULT_MIGRATIONS_DIR,
): Promise<MigrationStatus> {
  const migrations = await loadMigrations(dir);
  const { rows: exists } = await pool.query<{ ok: boolean }>(
    "SELECT to_regclass('schema_migrations') IS NOT NULL AS ok",
  );
  if (!exists[0]?.ok) return { current: false, pending: migrations.map((m) => `${m.version}_${m.name}`) };
  const { rows } = await pool.query<{ version: string; checksum: string }>(
    'SELECT version, checksum FROM schema_migrations',
  );
  const applied = new Map(rows.map((r) => [r.version, r.checksum]));
  const pending = migrations
    .filter((m) => applied.get(m.version) !== m.checksum)
    .map((m) => `${m.version}_${m.name}`);
  return { current: pending.length === 0, pending };
}
