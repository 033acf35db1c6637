// Exactly-once by coordinates, batched or one at a time (src/nodes/identity-store.ts): messages without a
// correlation id share an identity when they share coordinates (a topic created again) or name the same
// original (pattern-redrive-of); messages with one share it when a client reuses it. The live worker batches usage events as they come and a replay may batch
// them otherwise, so any split of a sequence into batches must give each message the outcome it gets when
// the messages are applied one at a time, and leave the same identity records.
import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ModelResult } from '../../src/contracts/results.ts';
import { NodePatternStorageEffect, NodePatternUpdateEffect } from '../../src/nodes/index.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

let db: TestDatabase;
let update: NodePatternUpdateEffect;
let patternId: string;

beforeAll(async () => {
  db = await createTestDatabase();
  update = new NodePatternUpdateEffect(db.pool);
  patternId = randomUUID();
  const inserted = await new NodePatternStorageEffect(db.pool).executeEffect({
    operation: 'insert',
    data: { pattern_id: patternId, pattern_name: 'Coordinates', pattern_type: 'code', language: 'go' },
  } as never);
  expect(inserted.success).toBe(true);
});
afterAll(async () => {
  await db.drop();
});

/** A message known by coordinates, its own (offset 0-2, one of two timestamps) or those a redrive names, or
 * by one of three correlation ids. */
const message = fc.record({
  coordinates: fc.integer({ min: 0, max: 2 }),
  kind: fc.constantFrom('own', 'redrive', 'correlation id'),
  timestamp: fc.constantFrom('1764547200000', '1764633600000'),
  success: fc.boolean(),
});
type Message = typeof message extends fc.Arbitrary<infer T> ? T : never;

function item(topic: string, m: Message, index: number) {
  // A redrive sits at an offset of its own, after the ones it may name.
  const offset = m.kind === 'own' ? m.coordinates : 100 + index;
  return {
    request: {
      operation: 'record_usage',
      pattern_id: patternId,
      usage_data: { success: m.success },
    } as never,
    context: {
      identity:
        m.kind === 'correlation id' ? `cid:${topic}-${m.coordinates}` : `off:${topic}/0/${m.coordinates}`,
      eventTime: new Date(Date.UTC(2026, 11, 1, 0, index)),
      source: { topic, partition: 0, offset: String(offset), timestamp: m.timestamp },
    },
  };
}

const outcome = (r: ModelResult) => [r.success, r.metadata.duplicate === true, r.error?.code ?? null];

async function records(topic: string): Promise<string[]> {
  const { rows } = await db.pool.query<{ identity: string }>(
    'SELECT identity FROM processed_messages WHERE identity LIKE $1 OR identity LIKE $2 ORDER BY identity',
    [`off:${topic}/%`, `cid:${topic}-%`],
  );
  return rows.map((r) => r.identity.replace(topic, ''));
}

describe('identities by coordinates', () => {
  it('give each message the same outcome and records however the messages are batched', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(message, { minLength: 1, maxLength: 10 }),
        fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 10, maxLength: 10 }),
        async (messages, cuts) => {
          const [single, batched] = [`single-${randomUUID()}`, `batched-${randomUUID()}`];
          const oneByOne: unknown[] = [];
          for (const [i, m] of messages.entries()) {
            const { request, context } = item(single, m, i);
            oneByOne.push(outcome(await update.executeEffect(request, context)));
          }
          const inBatches: unknown[] = [];
          for (let at = 0, cut = 0; at < messages.length; at += cuts[cut++ % cuts.length] as number) {
            const size = cuts[cut % cuts.length] as number;
            const batch = messages.slice(at, at + size).map((m, j) => item(batched, m, at + j));
            inBatches.push(...(await update.recordUsageBatch(batch)).map(outcome));
          }
          expect(inBatches).toEqual(oneByOne);
          expect(await records(batched)).toEqual(await records(single));
        },
      ),
      { numRuns: 60 },
    );
  });
});
