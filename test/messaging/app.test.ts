// The composition root in-process (the e2e tests run it as a child process, where coverage cannot see).
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MissingTopicsError, startWorkerApp, type WorkerApp } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';
import type { ModelResult } from '../../src/contracts/results.ts';
import { Lifecycle, type MessageOutcome } from '../../src/messaging/engine/lifecycle.ts';
import { createLogger } from '../../src/telemetry/logger.ts';
import { uniquePrefix } from '../support/kafka.ts';
import { createStack, type Stack } from '../support/stack.ts';

describe('worker app in-process', () => {
  let stack: Stack;
  let app: WorkerApp;
  const outcomes: MessageOutcome[] = [];

  beforeAll(async () => {
    stack = await createStack();
    const config = loadConfig({
      ...stack.env,
      PORT: '0',
      WORKER_BATCH_SIZE: '7',
      WORKER_RESULT_RETENTION: '2s',
    });
    const lifecycle = new Lifecycle();
    lifecycle.on('message.outcome', ({ outcome }) => outcomes.push(outcome));
    app = await startWorkerApp({ config, logger: createLogger('silent'), lifecycle });
    const deadline = Date.now() + 20_000;
    while (!app.readiness.ready && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  }, 60_000);
  afterAll(async () => {
    await app.stop();
    await stack.close();
  });

  it('serves health, readiness and a helpful 404', async () => {
    const base = `http://127.0.0.1:${app.health.port}`;
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    const ready = await fetch(`${base}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({
      ready: true,
      checks: { consumer: { ok: true }, migrations: { ok: true } },
    });
    const missing = await fetch(`${base}/nope`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ endpoints: ['/healthz', '/readyz', '/metrics'] });
  });

  it('applies usage runs in batches of WORKER_BATCH_SIZE while keeping per-message results', async () => {
    const id = randomUUID();
    await stack.send('pattern.insert', [
      {
        correlation_id: randomUUID(),
        data: { pattern_name: 'InProc', pattern_type: 'code', language: 'go', pattern_id: id },
      },
    ]);
    await stack.results.waitForCount(stack.names.result('pattern.insert'), 1);
    await stack.producer.send({
      topic: stack.names.request('pattern.usage'),
      messages: [
        ...Array.from({ length: 20 }, (_, i) => ({
          key: id,
          value: JSON.stringify({
            correlation_id: randomUUID(),
            pattern_id: id,
            usage_data: { success: i % 2 === 0, execution_time_ms: i },
          }),
        })),
        { key: id, value: JSON.stringify({ operation: 'update_stats', pattern_id: id }) },
        { key: id, value: '{"pattern_id": 42}' },
      ],
    });
    const results = await stack.results.waitForCount(stack.names.result('pattern.usage'), 22);
    const parsed = results.map((m) => m.json<ModelResult>());
    expect(parsed.filter((r) => r.metadata.operation === 'record_usage' && r.success)).toHaveLength(20);
    const sizes = parsed.map((r) => r.metadata.batch_size).filter((n): n is number => typeof n === 'number');
    expect(Math.max(...sizes)).toBeLessThanOrEqual(7);
    expect(parsed.find((r) => r.metadata.operation === 'update_stats')?.data).toMatchObject({
      usage_count: 20,
      success_count: 10,
    });
    expect(outcomes.filter((o) => o.deadLettered)).toHaveLength(1);
    await stack.results.waitForCount(stack.names.dlq('pattern.usage'), 1);
  });

  it('prunes result bodies past WORKER_RESULT_RETENTION in the background, keeping the identities', async () => {
    const deadline = Date.now() + 20_000;
    let pruned = 0;
    while (Date.now() < deadline) {
      const { rows } = await stack.db.pool.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM processed_messages WHERE pruned',
      );
      pruned = rows[0]?.n ?? 0;
      if (pruned > 0) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(pruned).toBeGreaterThan(0);
    // The identities stay: a pruned row keeps its key and fingerprint.
    const { rows } = await stack.db.pool.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM processed_messages WHERE pruned AND fingerprint IS NOT NULL',
    );
    expect(rows[0]?.n).toBe(pruned);
  });

  it('refuses to start when its topics are missing, naming them', async () => {
    const config = loadConfig({ ...stack.env, PORT: '0', TOPIC_PREFIX: uniquePrefix() });
    const attempt = startWorkerApp({ config, logger: createLogger('silent') });
    await expect(attempt).rejects.toBeInstanceOf(MissingTopicsError);
    await expect(attempt).rejects.toThrow('patterns topics create');
  });
});
