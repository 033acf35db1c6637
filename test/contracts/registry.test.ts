// The operation registry is the one declaration of every operation: the README's tables are generated
// from it, and every declared operation has a validator, a result schema, a node handler, a client
// method and a CLI route (the compiler checks the maps; this checks what it cannot see at run time).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { buildProgram } from '../../src/cli/program.ts';
import { METHOD_OPERATIONS, PatternClient } from '../../src/client/pattern-client.ts';
import {
  ALL_OPERATIONS,
  OPERATION_SCHEMAS,
  OPERATIONS,
  TOPIC_SPECS,
} from '../../src/contracts/operations.ts';
import { REQUEST_TOPICS } from '../../src/contracts/topics.ts';
import {
  NodePatternAnalyticsEffect,
  NodePatternQueryEffect,
  NodePatternStorageEffect,
  NodePatternUpdateEffect,
} from '../../src/nodes/index.ts';
import { README_FILE, renderReadme } from '../../scripts/readme-operations.ts';

describe('the operation registry', () => {
  it("is what the README's tables say (run `npm run docs` after changing src/contracts/operations.ts)", async () => {
    const readme = readFileSync(README_FILE, 'utf8');
    expect(readme === (await renderReadme(readme)), 'README.md tables are stale: run `npm run docs`').toBe(
      true,
    );
  });

  it('gives every operation a validator, a result schema, a handler, a client method and a CLI route', () => {
    const pool = {} as never;
    const nodes = {
      'pattern.insert': new NodePatternStorageEffect(pool),
      'pattern.search.request': new NodePatternQueryEffect(pool),
      'pattern.usage': new NodePatternUpdateEffect(pool),
      'pattern.analytics.compute': new NodePatternAnalyticsEffect(pool),
    };
    const client = new PatternClient();
    const program = buildProgram();
    const request = program.commands.find((c) => c.name() === 'request');
    const routed = new Set(request?.registeredArguments[0]?.argChoices ?? []);
    for (const operation of ALL_OPERATIONS) {
      const spec = OPERATIONS[operation];
      expect(OPERATION_SCHEMAS[operation], operation).toBeInstanceOf(z.ZodType);
      expect(spec.result, operation).toBeInstanceOf(z.ZodType);
      const handlers = (nodes[spec.topic] as unknown as { handlers: Record<string, unknown> }).handlers;
      expect(typeof handlers[operation], `${operation} has no handler`).toBe('function');
      expect(typeof (client as unknown as Record<string, unknown>)[spec.method], `${operation}: method`).toBe(
        'function',
      );
      expect((METHOD_OPERATIONS as Record<string, string>)[spec.method]).toBe(operation);
      expect(routed.has(operation), `${operation} is not reachable from \`patterns request\``).toBe(true);
    }
    // Nothing is handled that is not declared, and each topic's default is its first operation.
    for (const topic of REQUEST_TOPICS) {
      const handlers = (nodes[topic] as unknown as { handlers: Record<string, unknown> }).handlers;
      expect(Object.keys(handlers).sort()).toEqual([...TOPIC_SPECS[topic].operations].sort());
    }
    expect(TOPIC_SPECS['pattern.insert'].operations[0]).toBe('insert');
  });
});
