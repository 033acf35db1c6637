// Node and PostgreSQL spans in process, with an in-memory exporter: what the seed's tracing hooks
// recorded, error status, duplicates, no secrets, and trace ids in log lines.
import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { SpanStatusCode } from '@opentelemetry/api';
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tracePool } from '../../src/db/traced-pool.ts';
import { createPool, type Pool } from '../../src/db/pool.ts';
import {
  NodePatternQueryEffect,
  NodePatternStorageEffect,
  NodePatternUpdateEffect,
} from '../../src/nodes/index.ts';
import { createLogger } from '../../src/telemetry/logger.ts';
import { startTelemetry, type Telemetry } from '../../src/telemetry/otel.ts';
import { tracer } from '../../src/telemetry/tracing.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

const exporter = new InMemorySpanExporter();
let telemetry: Telemetry;
let db: TestDatabase;
let pool: Pool;
const SECRET = 'hunter2-telemetry-secret';

beforeAll(async () => {
  telemetry = await startTelemetry({ env: {}, spanProcessors: [new SimpleSpanProcessor(exporter)] });
  db = await createTestDatabase();
  // The password is a known secret: it must not reach any span attribute.
  const url = new URL(db.url);
  url.password = SECRET;
  pool = tracePool(createPool({ connectionString: url.toString(), min: 0, max: 2 }));
});
afterAll(async () => {
  await pool.end();
  await db.drop();
  await telemetry.shutdown();
});

const spansNamed = (name: string) => exporter.getFinishedSpans().filter((s) => s.name === name);

describe('node spans', () => {
  it('carry operation, ids, outcome, rows and usage quality, with PostgreSQL spans under them', async () => {
    const storage = new NodePatternStorageEffect(pool);
    const update = new NodePatternUpdateEffect(pool);
    const patternId = randomUUID();
    const correlationId = randomUUID();
    await storage.executeEffect({
      operation: 'insert',
      correlation_id: correlationId,
      data: { pattern_id: patternId, pattern_name: 'Spanned', pattern_type: 'code', language: 'go' },
    } as never);
    const [insert] = spansNamed('NodePatternStorageEffect insert');
    expect(insert?.attributes).toMatchObject({
      'pattern.operation': 'insert',
      'pattern.correlation_id': correlationId,
      'pattern.id': patternId,
      'pattern.outcome': 'success',
      'pattern.duplicate': false,
      'db.response.returned_rows': 1,
    });
    const db = exporter.getFinishedSpans().filter((s) => s.attributes['db.system.name'] === 'postgresql');
    expect(db.length).toBeGreaterThan(2);
    const underInsert = db.filter((s) => s.parentSpanContext?.spanId === insert?.spanContext().spanId);
    expect(underInsert.map((s) => s.attributes['db.operation.name'])).toEqual(
      expect.arrayContaining(['BEGIN', 'INSERT', 'COMMIT']),
    );

    await update.executeEffect({
      operation: 'record_usage',
      pattern_id: patternId,
      usage_data: { success: true, quality_before: 0.65, quality_after: 0.88 },
    } as never);
    const [usage] = spansNamed('NodePatternUpdateEffect record_usage');
    expect(usage?.attributes['pattern.quality_before']).toBe(0.65);
    expect(usage?.attributes['pattern.quality_after']).toBe(0.88);
    expect(usage?.attributes['pattern.quality_improvement']).toBeCloseTo(0.23, 6);

    // A batch's span names its operation and size.
    const stats = { operation: 'update_stats', pattern_id: patternId } as never;
    await update.updateStatsBatch([
      { request: stats, context: {} },
      { request: stats, context: {} },
    ]);
    const [batch] = spansNamed('NodePatternUpdateEffect update_stats');
    expect(batch?.attributes).toMatchObject({ 'pattern.operation': 'update_stats', 'pattern.batch_size': 2 });

    // The same write again is a duplicate: no second effect, and the span says so.
    const identity = randomUUID();
    const again = {
      operation: 'insert',
      data: { pattern_id: randomUUID(), pattern_name: 'SpannedTwice', pattern_type: 'code', language: 'go' },
    } as never;
    await storage.executeEffect(again, { identity });
    await storage.executeEffect(again, { identity });
    expect(spansNamed('NodePatternStorageEffect insert').at(-1)?.attributes['pattern.duplicate']).toBe(true);
  });

  it('set an error status with the error code when an operation fails', async () => {
    const query = new NodePatternQueryEffect(pool);
    await query.executeEffect({ operation: 'get_by_id', pattern_id: randomUUID() } as never);
    const [failed] = spansNamed('NodePatternQueryEffect get_by_id');
    expect(failed?.status.code).toBe(SpanStatusCode.ERROR);
    expect(failed?.attributes['error.type']).toBe('NOT_FOUND');
    expect(failed?.attributes['pattern.outcome']).toBe('error');
  });

  it('never put the connection password or parameter values in span attributes', () => {
    const everything = JSON.stringify(
      exporter.getFinishedSpans().map((s) => [s.name, s.attributes, s.events]),
    );
    expect(everything).not.toContain(SECRET);
    expect(everything).not.toContain('Spanned'); // a parameter value of the INSERT
    expect(everything).toContain('INSERT INTO pattern_templates');
  });
});

describe('log lines', () => {
  it('carry trace_id and span_id of the active span', () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const logger = createLogger('info', {}, sink);
    tracer.startActiveSpan('handling', (span) => {
      logger.info('inside');
      span.end();
    });
    logger.info('outside');
    const [inside, outside] = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    const { traceId, spanId } = exporter
      .getFinishedSpans()
      .find((s) => s.name === 'handling')!
      .spanContext();
    expect(inside).toMatchObject({ trace_id: traceId, span_id: spanId });
    expect(outside?.trace_id).toBeUndefined();
  });
});
