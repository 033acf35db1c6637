// A read still running at its caller's deadline, or past its lane's read timeout, is cancelled in the
// database (src/nodes/read-deadline.ts), for searches as for analytics; a cancel sent never reaches a later
// statement on the same connection.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cancelWhenLate } from '../../src/nodes/read-deadline.ts';
import { NodePatternQueryEffect } from '../../src/nodes/index.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

let db: TestDatabase;
beforeAll(async () => {
  // One connection: the cancel must not need a pooled one.
  db = await createTestDatabase({ poolMax: 1 });
});
afterAll(async () => {
  await db.drop();
});

/** Statements of other backends of this database that are running now. */
async function running(pattern: string): Promise<number> {
  const client = await import('pg').then(({ default: pg }) => new pg.Client({ connectionString: db.url }));
  await client.connect();
  try {
    const { rows } = await client.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_stat_activity
        WHERE datname = current_database() AND pid <> pg_backend_pid() AND state = 'active' AND query LIKE $1`,
      [pattern],
    );
    return rows[0]?.n ?? 0;
  } finally {
    await client.end();
  }
}

describe('cancelWhenLate', () => {
  it('cancels the running statement in the database when the deadline passes', async () => {
    const client = await db.pool.connect();
    try {
      const started = Date.now();
      await expect(
        cancelWhenLate(client, { deadline: Date.now() + 200 }, () => client.query('SELECT pg_sleep(5)')),
      ).rejects.toMatchObject({
        code: 'DEADLINE_EXCEEDED',
        message: expect.stringContaining('cancelled in the database') as string,
      });
      expect(Date.now() - started).toBeLessThan(2_000);
      expect(await running('%pg_sleep%')).toBe(0);
      const { rows } = await client.query<{ n: number }>('SELECT 1 AS n');
      expect(rows).toEqual([{ n: 1 }]);
    } finally {
      client.release();
    }
  });

  it('does not run a read whose deadline has passed, and arms nothing for one beyond any timer', async () => {
    const client = await db.pool.connect();
    try {
      await expect(
        cancelWhenLate(client, { deadline: Date.now() - 1 }, () => client.query('SELECT 1')),
      ).rejects.toMatchObject({ code: 'DEADLINE_EXCEEDED' });
      // Any producer can write a deadline; one past setTimeout's range bounds nothing.
      for (const deadline of [Date.now() + 2 ** 31, 9.2e18]) {
        const far = await cancelWhenLate(client, { deadline: deadline }, () =>
          client.query<{ n: number }>('SELECT 1 AS n'),
        );
        expect(far.rows).toEqual([{ n: 1 }]);
      }
    } finally {
      client.release();
    }
  });

  it('cancels a read that runs past its timeout as a statement timeout, to be retried as one', async () => {
    const client = await db.pool.connect();
    try {
      for (const deadline of [undefined, Date.now() + 10_000]) {
        const started = Date.now();
        await expect(
          cancelWhenLate(client, { deadline, timeoutMs: 200 }, () => client.query('SELECT pg_sleep(5)')),
        ).rejects.toMatchObject({ code: '57014' });
        expect(Date.now() - started).toBeLessThan(2_000);
      }
      // The deadline first: DEADLINE_EXCEEDED, not a timeout.
      await expect(
        cancelWhenLate(client, { deadline: Date.now() + 200, timeoutMs: 10_000 }, () =>
          client.query('SELECT pg_sleep(5)'),
        ),
      ).rejects.toMatchObject({ code: 'DEADLINE_EXCEEDED' });
      const { rows } = await client.query<{ n: number }>('SELECT 1 AS n');
      expect(rows).toEqual([{ n: 1 }]);
    } finally {
      client.release();
    }
  });

  it('never cancels a later statement, however the deadline and the statement race', async () => {
    const client = await db.pool.connect();
    let cancelled = 0;
    try {
      await fc.assert(
        fc.asyncProperty(
          fc.integer({ min: 0, max: 8 }),
          fc.integer({ min: 0, max: 8 }),
          async (sleepMs, leftMs) => {
            try {
              await cancelWhenLate(client, { deadline: Date.now() + leftMs + 1 }, () =>
                client.query('SELECT pg_sleep($1)', [sleepMs / 1000]),
              );
            } catch (err) {
              expect(err).toMatchObject({ code: 'DEADLINE_EXCEEDED' });
              cancelled++;
            }
            // The next statement on the same connection, at once: a cancel sent above must not reach it.
            const { rows } = await client.query<{ n: number }>('SELECT 1 AS n FROM pg_sleep(0.002)');
            expect(rows).toEqual([{ n: 1 }]);
          },
        ),
        { numRuns: 150 },
      );
    } finally {
      client.release();
    }
    // The property covered both outcomes.
    expect(cancelled).toBeGreaterThan(0);
    expect(cancelled).toBeLessThan(150);
  });
});

describe('a search past its deadline', () => {
  it('is cancelled in the database while it waits, not left to the statement timeout', async () => {
    const query = new NodePatternQueryEffect(db.pool);
    const blocker = await import('pg').then(({ default: pg }) => new pg.Client({ connectionString: db.url }));
    await blocker.connect();
    try {
      await blocker.query('BEGIN');
      await blocker.query('LOCK TABLE pattern_templates IN ACCESS EXCLUSIVE MODE');
      const started = Date.now();
      const result = await query.executeEffect(
        { operation: 'search', search_query: 'retry backoff', filters: null, limit: 10, offset: 0 } as never,
        { deadline: Date.now() + 300 },
      );
      expect(result.error).toMatchObject({
        code: 'DEADLINE_EXCEEDED',
        message: expect.stringContaining('cancelled in the database') as string,
      });
      expect(Date.now() - started).toBeLessThan(2_000);
      expect(await running('%pattern_templates%')).toBe(0);
    } finally {
      await blocker.query('ROLLBACK');
      await blocker.end();
    }
    // The pool's one connection serves the next read.
    const next = await query.executeEffect(
      { operation: 'search', search_query: 'retry backoff', filters: null, limit: 10, offset: 0 } as never,
      { deadline: Date.now() + 5_000 },
    );
    expect(next).toMatchObject({ success: true, data: [] });
  });
});

describe('a search past the reads lane timeout (DB_READS_STATEMENT_TIMEOUT_MS)', () => {
  it('is cancelled in the database and fails as a statement timeout, which the lane retries once', async () => {
    const query = new NodePatternQueryEffect(db.pool, { readTimeoutMs: 300 });
    const blocker = await import('pg').then(({ default: pg }) => new pg.Client({ connectionString: db.url }));
    await blocker.connect();
    try {
      await blocker.query('BEGIN');
      await blocker.query('LOCK TABLE pattern_templates IN ACCESS EXCLUSIVE MODE');
      const started = Date.now();
      await expect(
        query.executeEffect({ operation: 'get_by_name', pattern_name: 'x', language: 'go' } as never),
      ).rejects.toMatchObject({ name: 'RetryableError', bounded: true, errorClass: 'StatementTimeout' });
      expect(Date.now() - started).toBeLessThan(2_000);
      expect(await running('%pattern_templates%')).toBe(0);
    } finally {
      await blocker.query('ROLLBACK');
      await blocker.end();
    }
  });
});
