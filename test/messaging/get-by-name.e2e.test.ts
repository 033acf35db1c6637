// The operation added through the registry alone (get_by_name: one pattern by its exact name and
// language), end to end: at the node, through Kafka with PatternClient's derived method, and with the
// CLI's `patterns request`.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { PatternClient } from '../../src/client/index.ts';
import type { ModelResult } from '../../src/contracts/results.ts';
import { NodePatternQueryEffect } from '../../src/nodes/index.ts';
import { patterns } from '../support/cli.ts';
import { brokers } from '../support/kafka.ts';
import { createStack, type Stack } from '../support/stack.ts';

vi.setConfig({ testTimeout: 60_000 });

describe('get_by_name', () => {
  let stack: Stack;
  let client: PatternClient;
  const name = `ByName-${randomUUID().slice(0, 8)}`;
  let patternId: string;
  beforeAll(async () => {
    stack = await createStack({ reply: true });
    await stack.worker();
    client = await new PatternClient({ brokers: brokers(), topicPrefix: stack.names.prefix }).connect();
    for (const language of ['go', 'python']) {
      const inserted = await client.insert({ data: { pattern_name: name, pattern_type: 'code', language } });
      expect(inserted.success).toBe(true);
      if (language === 'python') patternId = inserted.data?.pattern_id as string;
    }
  });
  afterAll(async () => {
    await client?.close();
    await stack?.close();
  });

  it('finds the one pattern of that name and language through Kafka', async () => {
    const found = await client.getByName({ pattern_name: name, language: 'python' });
    expect(found).toMatchObject({ success: true, data: { pattern_id: patternId, language: 'python' } });
    const missing = await client.getByName({ pattern_name: name, language: 'rust' });
    expect(missing.error).toMatchObject({
      code: 'NOT_FOUND',
      message: `no pattern named "${name}" in rust`,
      details: { pattern_name: name, language: 'rust' },
    });
  });

  it('is refused without a language, naming the field, at the node too', async () => {
    const node = new NodePatternQueryEffect(stack.db.pool);
    const refused = await node.executeEffect({ operation: 'get_by_name', pattern_name: name } as never);
    expect(refused.error?.code).toBe('VALIDATION_ERROR');
    expect(refused.error?.message).toMatch(/^language: /);
  });

  it('is reachable from the CLI with `patterns request`', async () => {
    const run = await patterns(
      stack.env,
      'request',
      'get_by_name',
      JSON.stringify({ pattern_name: name, language: 'go' }),
    );
    expect(run.code, run.stderr).toBe(0);
    expect((JSON.parse(run.stdout) as ModelResult<{ language: string }>).data?.language).toBe('go');
    const bad = await patterns(stack.env, 'request', 'get_by_name', '[1]');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/the fields must be a JSON object/);
    const missing = await patterns(stack.env, 'request', 'get_by_name', '{"pattern_name":"x"}');
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/language/);
  });
});
