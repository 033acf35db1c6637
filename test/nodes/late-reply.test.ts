// Late-reply pickup at the node level (get_result on NodePatternQueryEffect), over a fresh migrated
// database: a write's recorded outcome is found by its correlation id however it was sent (body, NestJS
// header, Spring's raw bytes) or by its identity, with the data byte for byte; anything else says why not.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StoredResultLookup } from '../../src/contracts/result-data.ts';
import type { ModelResult } from '../../src/contracts/results.ts';
import { pruneBatch } from '../../src/nodes/identity-pruning.ts';
import { NodePatternQueryEffect, NodePatternStorageEffect } from '../../src/nodes/index.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

let db: TestDatabase;
let storage: NodePatternStorageEffect;
let query: NodePatternQueryEffect;

beforeAll(async () => {
  db = await createTestDatabase();
  storage = new NodePatternStorageEffect(db.pool);
  query = new NodePatternQueryEffect(db.pool);
});
afterAll(async () => {
  await db.drop();
});

const base = (name: string) => ({ pattern_name: name, pattern_type: 'code', language: 'go' });

/** Inserts a pattern as the worker would for a message with this identity. */
async function insertWithIdentity(identity: string, name: string): Promise<ModelResult> {
  const result = await storage.executeEffect({ operation: 'insert', data: base(name) } as never, {
    identity,
    eventTime: new Date('2026-11-01T00:00:00Z'),
  });
  expect(result.success).toBe(true);
  return result;
}

async function lookup(body: Record<string, unknown>): Promise<StoredResultLookup> {
  const answer = await query.executeEffect({ operation: 'get_result', ...body } as never);
  expect(answer.error).toBeNull();
  return answer.data as StoredResultLookup;
}

describe('get_result', () => {
  it('answers a write sent with a body correlation id with its first result, byte for byte', async () => {
    const cid = randomUUID();
    const first = await insertWithIdentity(`cid:${cid}`, 'LatePickupBody');
    const found = await lookup({ request_correlation_id: cid.toUpperCase() });
    expect(found).toMatchObject({
      status: 'applied',
      identity: `cid:${cid}`,
      topic: 'pattern.insert',
      operation: 'insert',
      result_pruned: false,
      result: { success: true, error: null },
    });
    if (found.status !== 'applied') throw new Error('not applied');
    expect(JSON.stringify(found.result.data)).toBe(JSON.stringify(first.data));
    expect(Date.parse(found.processed_at)).toBeGreaterThan(Date.now() - 60_000);
  });

  it('finds NestJS (UTF-8 header) and Spring (16 raw header bytes) correlation ids, and identities', async () => {
    const nest = `nest-${randomUUID()}`;
    const nestFirst = await insertWithIdentity(`hdr:${Buffer.from(nest).toString('base64')}`, 'LateNest');
    const spring = randomUUID();
    const raw = Buffer.from(spring.replaceAll('-', ''), 'hex');
    const springFirst = await insertWithIdentity(`hdr:${raw.toString('base64')}`, 'LateSpring');
    const offsets = 'off:pattern.insert/3/42';
    await insertWithIdentity(offsets, 'LateOffsets');

    const byNest = await lookup({ request_correlation_id: nest });
    // As on the wire: the node hands back Dates, the record holds their JSON.
    const wire = (r: ModelResult) => JSON.stringify(r.data);
    expect(byNest.status === 'applied' && JSON.stringify(byNest.result.data)).toBe(wire(nestFirst));
    const bySpring = await lookup({ request_correlation_id: spring });
    expect(bySpring.status === 'applied' && JSON.stringify(bySpring.result.data)).toBe(wire(springFirst));
    expect(await lookup({ request_identity: offsets })).toMatchObject({
      status: 'applied',
      identity: offsets,
    });
    // The longest kafka_correlationId accepted (1,024 bytes) makes the longest identity: still looked up.
    const longest = `hdr:${Buffer.alloc(1024, 0xa5).toString('base64')}`;
    await insertWithIdentity(longest, 'LateLongest');
    expect(longest).toHaveLength(1372);
    expect(await lookup({ request_identity: longest })).toMatchObject({
      status: 'applied',
      identity: longest,
    });
  });

  it('says "unknown" for what is not recorded (never sent, or failed), "not_stored" for a read', async () => {
    const never = randomUUID();
    const unknown = await lookup({ request_correlation_id: never });
    expect(unknown).toMatchObject({ status: 'unknown' });
    if (unknown.status !== 'unknown') throw new Error('not unknown');
    expect(unknown.identities).toContain(`cid:${never}`);
    expect(unknown.hint).toMatch(/not applied yet.*\.dlq/);

    // A write that failed rolled back with its identity: nothing is recorded for it.
    const failed = randomUUID();
    const deleted = await storage.executeEffect(
      { operation: 'delete', pattern_id: randomUUID(), correlation_id: failed } as never,
      { identity: `cid:${failed}` },
    );
    expect(deleted.error?.code).toBe('NOT_FOUND');
    expect(await lookup({ request_correlation_id: failed, request_operation: 'delete' })).toMatchObject({
      status: 'unknown',
    });

    expect(await lookup({ request_correlation_id: randomUUID(), request_operation: 'search' })).toMatchObject(
      { status: 'not_stored', operation: 'search', hint: expect.stringMatching(/send it again/) as unknown },
    );
  });

  it('answers with the ids (and lists of ids) it still has after the result body was pruned', async () => {
    const cid = randomUUID();
    const first = await insertWithIdentity(`cid:${cid}`, 'LatePruned');
    const batchCid = randomUUID();
    const batch = await storage.executeEffect(
      { operation: 'batch_insert', patterns: [base('LatePrunedA'), base('LatePrunedB')] } as never,
      { identity: `cid:${batchCid}` },
    );
    await db.pool.query(
      "UPDATE processed_messages SET processed_at = now() - interval '8 days' WHERE identity = ANY($1)",
      [[`cid:${cid}`, `cid:${batchCid}`]],
    );
    while ((await pruneBatch(db.pool, 7 * 86_400_000, 500)).rows > 0);
    const found = await lookup({ request_correlation_id: cid });
    expect(found).toMatchObject({ status: 'applied', result_pruned: true, result: { success: true } });
    if (found.status !== 'applied') throw new Error('not applied');
    expect(found.result.data).toEqual({ pattern_id: (first.data as { pattern_id: string }).pattern_id });
    // Lists of ids (*_ids) are ids too.
    const foundBatch = await lookup({ request_correlation_id: batchCid });
    expect(foundBatch.status === 'applied' && foundBatch.result.data).toEqual({
      pattern_ids: (batch.data as { pattern_ids: string[] }).pattern_ids,
    });
  });

  it('refuses a lookup that names no request, or two, or a malformed identity, naming the field', async () => {
    const paths = async (body: Record<string, unknown>) => {
      const answer = await query.executeEffect({ operation: 'get_result', ...body } as never);
      expect(answer.error?.code).toBe('VALIDATION_ERROR');
      return ((answer.error?.details?.issues ?? []) as { path: string }[]).map((i) => i.path);
    };
    expect(await paths({})).toEqual(['request_correlation_id']);
    expect(await paths({ request_correlation_id: 'a', request_identity: 'cid:a' })).toEqual([
      'request_correlation_id',
    ]);
    expect(await paths({ request_identity: 'pattern.insert/1/2' })).toEqual(['request_identity']);
    expect(await paths({ request_correlation_id: 'x', request_operation: 'nope' })).toEqual([
      'request_operation',
    ]);
    // Other operations take the new fields only as null.
    expect(await paths({ operation: 'search', search_query: 'a', request_identity: 'cid:a' })).toEqual([
      'request_identity',
    ]);
  });
});
