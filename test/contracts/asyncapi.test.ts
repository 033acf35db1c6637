// The AsyncAPI document: valid for the official parser, complete, and in step with the zod schemas.
import { readFileSync } from 'node:fs';
import { Parser } from '@asyncapi/parser';
import { describe, expect, it } from 'vitest';
import { HEADERS } from '../../src/contracts/headers.ts';
import { REQUEST_TOPICS } from '../../src/contracts/topics.ts';
import { TOPIC_SPECS } from '../../src/contracts/operations.ts';
import { ASYNCAPI_FILE, renderAsyncApi } from '../../scripts/asyncapi.ts';

const committed = readFileSync(ASYNCAPI_FILE, 'utf8');

describe('asyncapi.yaml', () => {
  it('is what the schemas generate now (run `npm run asyncapi` after changing src/contracts)', () => {
    expect(committed === renderAsyncApi(), 'asyncapi.yaml is stale: run `npm run asyncapi`').toBe(true);
  });

  it('passes the official AsyncAPI parser without errors', async () => {
    const { document, diagnostics } = await new Parser().parse(committed);
    // Severity 0 is an error in the parser's (Spectral's) scale; warnings and hints are allowed.
    const errors = diagnostics.filter((d) => Number(d.severity) === 0);
    expect(errors.map((d) => `${d.path.join('.')}: ${d.message}`)).toEqual([]);
    expect(document?.version()).toBe('3.0.0');
  });

  it('describes every topic, operation and header of the contract', async () => {
    const { document } = await new Parser().parse(committed);
    if (!document) throw new Error('no document');
    const addresses = document
      .channels()
      .all()
      .map((c) => c.address());
    for (const logical of REQUEST_TOPICS) {
      expect(addresses).toContain(logical);
      expect(addresses).toContain(TOPIC_SPECS[logical].result);
      expect(addresses).toContain(`${logical}.dlq`);
      const channel = document
        .channels()
        .all()
        .find((c) => c.address() === logical);
      const names = channel
        ?.messages()
        .all()
        .map((m) => m.id());
      expect(names?.sort()).toEqual([...TOPIC_SPECS[logical].operations].sort());
    }
    const search = document
      .messages()
      .all()
      .find((m) => m.name() === 'searchRequest');
    const headers = Object.keys((search?.headers()?.json() as { properties: object }).properties);
    expect(headers).toEqual(
      expect.arrayContaining([
        HEADERS.correlationId,
        HEADERS.replyTopic,
        HEADERS.replyPartition,
        HEADERS.traceparent,
      ]),
    );
    const payload = search?.payload()?.json() as { required: string[]; properties: Record<string, unknown> };
    expect(payload.required).toContain('search_query');
    expect(payload.properties.filters).toBeDefined();
    expect(
      document
        .operations()
        .all()
        .filter((o) => o.action() === 'receive'),
    ).toHaveLength(4);
  });
});
