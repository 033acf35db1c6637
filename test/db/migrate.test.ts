import { execFile } from 'node:child_process';
import { cp, mkdtemp, writeFile, appendFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DEFAULT_MIGRATIONS_DIR,
  loadMigrations,
  migrate,
  migrationStatus,
  MigrationError,
} from '../../src/db/migrate.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

const run = promisify(execFile);

describe('migrations', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase({ migrated: false });
  });
  afterAll(async () => {
    await db.drop();
  });

  it('apply to an empty database, then re-run as a no-op', async () => {
    const all = await loadMigrations();
    expect(all.length).toBeGreaterThan(0);
    expect(await migrationStatus(db.pool)).toMatchObject({ current: false });

    const first = await migrate(db.pool);
    expect(first.applied).toHaveLength(all.length);
    expect(first.alreadyApplied).toHaveLength(0);

    const second = await migrate(db.pool);
    expect(second.applied).toHaveLength(0);
    expect(second.alreadyApplied).toHaveLength(all.length);
    expect(await migrationStatus(db.pool)).toEqual({ current: true, pending: [] });
  });

  it('refuse a migration edited after it was applied, naming the file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pw-migrations-'));
    await cp(DEFAULT_MIGRATIONS_DIR, dir, { recursive: true });
    const edited = (await loadMigrations(dir))[0];
    if (!edited) throw new Error('no migrations');
    await appendFile(join(dir, `${edited.version}_${edited.name}.sql`), '\n-- edited\n');

    await expect(migrate(db.pool, dir)).rejects.toThrow(MigrationError);
    await expect(migrate(db.pool, dir)).rejects.toThrow(`${edited.version}_${edited.name}.sql was edited`);
    expect((await migrationStatus(db.pool, dir)).pending).toEqual([`${edited.version}_${edited.name}`]);
  });

  it('reject badly named migration files', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pw-migrations-'));
    await writeFile(join(dir, 'schema.sql'), 'SELECT 1;');
    await expect(loadMigrations(dir)).rejects.toThrow('must look like 001_name.sql');
  });
});

describe('migrations from three processes at once', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase({ migrated: false });
  });
  afterAll(async () => {
    await db.drop();
  });

  it('apply each migration exactly once', async () => {
    const cli = join(import.meta.dirname, '../../src/cli/main.ts');
    const runs = await Promise.all(
      [1, 2, 3].map(() =>
        run(process.execPath, [cli, 'migrate'], { env: { ...process.env, DATABASE_URL: db.url } }),
      ),
    );
    const total = (await loadMigrations()).length;
    const appliedCounts = runs.map((r) => Number(/(\d+) applied,/.exec(r.stdout)?.[1]));
    expect(appliedCounts.reduce((a, b) => a + b, 0)).toBe(total);
    expect(appliedCounts.filter((n) => n === total)).toHaveLength(1);

    const { rows } = await db.pool.query<{ n: number }>('SELECT count(*) AS n FROM schema_migrations');
    expect(rows[0]?.n).toBe(total);
  });
});
