// A read still running at its caller's deadline, or past its lane's read timeout, is cancelled in the
// database (src/nodes/read-deadline.ts), for searches as for analytics; a cancel sent never reaches a later
// statement on the same connection.
import net from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cancelStatement } from '../../src/db/cancel.ts';
import type { PoolClient } from '../../src/db/pool.ts';
import { cancelWhenLate } from '../../src/nodes/read-deadline.ts';
import { NodePatternQueryEffect } from '../../src/nodes/index.ts';
import { createTestDatabase, lockTables, type TestDatabase } from '../support/database.ts';

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
        // A cancel is sent 50 ms into a read at the soonest: statements of about that long race it.
        fc.asyncProperty(
          fc.integer({ min: 40, max: 60 }),
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
        { numRuns: 100 },
      );
    } finally {
      client.release();
    }
    // The property covered both outcomes.
    expect(cancelled).toBeGreaterThan(0);
    expect(cancelled).toBeLessThan(100);
  });
});

describe('a search past its deadline', () => {
  it('is cancelled in the database while it waits, not left to the statement timeout', async () => {
    const query = new NodePatternQueryEffect(db.pool);
    const lock = await lockTables(db.url, ['pattern_templates']);
    try {
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
      await lock.release();
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
    const lock = await lockTables(db.url, ['pattern_templates']);
    try {
      const started = Date.now();
      await expect(
        query.executeEffect({ operation: 'get_by_name', pattern_name: 'x', language: 'go' } as never),
      ).rejects.toMatchObject({ name: 'RetryableError', bounded: true, errorClass: 'StatementTimeout' });
      expect(Date.now() - started).toBeLessThan(2_000);
      expect(await running('%pattern_templates%')).toBe(0);
    } finally {
      await lock.release();
    }
  });
});

/** A server on a free port that, for each connection, closes it at once or never. */
async function fakeServer(close: boolean): Promise<{ port: number; stop(): Promise<void> }> {
  const sockets: net.Socket[] = [];
  const server = net.createServer((socket) => {
    sockets.push(socket);
    socket.on('error', () => undefined);
    if (close) socket.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    stop: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

describe('cancelStatement', () => {
  const target = (port: number) =>
    ({ processID: 1, secretKey: 2, host: '127.0.0.1', port }) as unknown as PoolClient;

  it('says whether the cancel reached the server, never did, or got no answer', async () => {
    const closing = await fakeServer(true);
    const silent = await fakeServer(false);
    try {
      expect(await cancelStatement(target(closing.port))).toBe('sent');
      expect(await cancelStatement(target(silent.port))).toBe('unanswered');
    } finally {
      await closing.stop();
      await silent.stop();
    }
    expect(await cancelStatement(target(closing.port))).toBe('not-sent');
  });

  it('throws the connection away when its cancel got no answer', async () => {
    const silent = await fakeServer(false);
    const client = await db.pool.connect();
    const pgPort = (client as unknown as { port: number }).port;
    let discarded: Error | undefined;
    try {
      // The cancel goes to a server that never answers; the statement itself ends on its own.
      (client as unknown as { port: number }).port = silent.port;
      await expect(
        cancelWhenLate(client, { timeoutMs: 60 }, () => client.query('SELECT pg_sleep(0.3)')),
      ).rejects.toMatchObject({ name: 'RetryableError', bounded: false });
      discarded = new Error('discarded');
    } finally {
      (client as unknown as { port: number }).port = pgPort;
      client.release(discarded);
      await silent.stop();
    }
  });
});
