import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { requestFingerprint } from '../../src/contracts/fingerprint.ts';

// Fingerprints are stored beside every identity record: a redelivery or a replay after an upgrade is
// compared with what an earlier version stored, so the canonical form may never change.

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The canonical JSON as the first version wrote it (entries, filter, sort, map, join): the oracle. */
function firstCanonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(firstCanonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${firstCanonical(v)}`).join(',')}}`;
  }
  if (typeof value === 'string' && UUID.test(value)) return JSON.stringify(value.toLowerCase());
  return JSON.stringify(value) ?? 'null';
}
const firstFingerprint = (request: unknown) =>
  createHash('sha256').update(firstCanonical(request)).digest().subarray(0, 16).toString('base64url');

describe('requestFingerprint', () => {
  it('keeps the fingerprints earlier versions stored', () => {
    expect(
      requestFingerprint({
        operation: 'record_usage',
        data: {
          pattern_id: '6F9619FF-8B86-D011-B42D-00C04FC964FF',
          usage_data: {
            success: true,
            execution_time_ms: 41,
            quality_before: 0.61,
            quality_after: 0.77,
            context: { z: [1, 'two', null, { b: false, a: 1e21 }], a: '' },
          },
        },
        correlation_id: 'A3B1C2D4-0000-4000-8000-000000000001',
      }),
    ).toBe('rqJFoTMSkVQPPRmN6MABrA');
    expect(
      requestFingerprint({
        operation: 'insert',
        data: { pattern_name: 'Ünïcödé \u2028 "quoted" \\ 𝄞', tags: [], context: {}, confidence_score: -0 },
      }),
    ).toBe('_6v74_CjtuGCFAW1qBMhaQ');
    expect(requestFingerprint([])).toBe('T1PNoYwrqgwDVLtfmj7L5Q');
    // Keys that sort differently by code unit than by locale or number, and an own __proto__ key.
    expect(
      requestFingerprint(JSON.parse('{"": 1, "é": 2, "e": 3, "Z": 4, "10": 5, "9": 6, "__proto__": 7}')),
    ).toBe('oFLmlE6ZRUV-ZTX5zANHmw');
  });

  it('is the first version’s for any JSON a client can send, and ignores key order and UUID case', () => {
    const uuid = fc.uuid().chain((id) => fc.constantFrom(id, id.toUpperCase()));
    const request = fc.letrec((tie) => ({
      value: fc.oneof(
        { depthSize: 'small' },
        fc.jsonValue({ maxDepth: 2 }),
        uuid,
        fc.array(tie('value'), { maxLength: 4 }),
        fc.dictionary(
          fc.string({ unit: 'binary', maxLength: 6 }),
          fc.option(tie('value'), { nil: undefined }),
          {
            maxKeys: 5,
          },
        ),
      ),
    })).value;
    fc.assert(
      fc.property(request, (value) => {
        expect(requestFingerprint(value)).toBe(firstFingerprint(value));
        // The same request parsed from its JSON (what the worker fingerprints) gives the same.
        const text = JSON.stringify(value);
        if (text !== undefined)
          expect(requestFingerprint(JSON.parse(text))).toBe(firstFingerprint(JSON.parse(text)));
      }),
      { numRuns: 1000 },
    );
  });

  it('sorts objects of many keys as the first version did', () => {
    const wide = fc.dictionary(fc.string({ unit: 'binary', maxLength: 4 }), fc.jsonValue({ maxDepth: 1 }), {
      minKeys: 10,
      maxKeys: 40,
    });
    fc.assert(
      fc.property(wide, (value) => {
        expect(requestFingerprint(value)).toBe(firstFingerprint(value));
      }),
      { numRuns: 300 },
    );
  });

  it('does not depend on key order or on the case of UUIDs', () => {
    const a = { data: { pattern_id: '6F9619FF-8B86-D011-B42D-00C04FC964FF', x: 1 }, operation: 'update' };
    const b = { operation: 'update', data: { x: 1, pattern_id: '6f9619ff-8b86-d011-b42d-00c04fc964ff' } };
    expect(requestFingerprint(a)).toBe(requestFingerprint(b));
    expect(requestFingerprint({ ...a, operation: 'delete' })).not.toBe(requestFingerprint(a));
  });
});
