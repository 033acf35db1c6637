import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ConfigError, configWarnings, decompressedBatchBytes, loadConfig } from '../../src/config.ts';
import { createLogger } from '../../src/telemetry/logger.ts';
import { redactUrl } from '../../src/telemetry/redact.ts';

describe('configuration', () => {
  it('has working defaults', () => {
    expect(loadConfig({})).toMatchObject({
      KAFKA_BROKERS: ['127.0.0.1:9092'],
      KAFKA_GROUP_ID: 'pattern-worker',
      DB_POOL_MAX: 20,
    });
  });

  it('names every bad variable', () => {
    let error: unknown;
    try {
      loadConfig({
        KAFKA_BROKERS: 'nohost',
        PORT: 'eighty',
        LOG_LEVEL: 'loud',
        TOPIC_PREFIX: 'a b',
      });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as Error).message;
    for (const name of ['KAFKA_BROKERS', 'PORT', 'LOG_LEVEL', 'TOPIC_PREFIX'])
      expect(message).toContain(name);
  });

  it('checks the pool bounds against each other', () => {
    expect(() => loadConfig({ DB_POOL_MIN: '30', DB_POOL_MAX: '10' })).toThrow(
      'DB_POOL_MIN: must not exceed DB_POOL_MAX',
    );
  });

  it('runs every lane unless WORKER_LANES names some, and names what is wrong with a bad list', () => {
    expect(loadConfig({}).WORKER_LANES).toEqual(['writes', 'reads', 'analytics']);
    expect(loadConfig({ WORKER_LANES: ' reads , analytics' }).WORKER_LANES).toEqual(['reads', 'analytics']);
    expect(() => loadConfig({ WORKER_LANES: 'reads,search' })).toThrow(
      'WORKER_LANES.1: unknown lane "search": expected some of writes, reads, analytics',
    );
    expect(() => loadConfig({ WORKER_LANES: 'reads,reads' })).toThrow('WORKER_LANES: names a lane twice');
    expect(() => loadConfig({ WORKER_LANES: ',' })).toThrow('WORKER_LANES: expected one or more of');
  });

  it('bounds a fetched batch decompressed at 16 MiB, or the message bound where that is larger', () => {
    const MiB = 1024 * 1024;
    expect(decompressedBatchBytes(loadConfig({}))).toBe(16 * MiB);
    expect(decompressedBatchBytes(loadConfig({ WORKER_MAX_MESSAGE_BYTES: String(32 * MiB) }))).toBe(32 * MiB);
    expect(decompressedBatchBytes(loadConfig({ WORKER_MAX_DECOMPRESSED_BATCH_BYTES: String(4 * MiB) }))).toBe(
      4 * MiB,
    );
    expect(() =>
      loadConfig({
        WORKER_MAX_DECOMPRESSED_BATCH_BYTES: String(2 * MiB),
        WORKER_MAX_MESSAGE_BYTES: String(3 * MiB),
      }),
    ).toThrow('WORKER_MAX_DECOMPRESSED_BATCH_BYTES: must be at least WORKER_MAX_MESSAGE_BYTES (3145728)');
  });

  it('counts only the lanes this process runs against the pools', () => {
    const pool = { DB_POOL_MAX: '8', WORKER_WRITES_CONCURRENCY: '4', WORKER_READS_CONCURRENCY: '8' };
    expect(configWarnings(loadConfig(pool)).join('\n')).toContain('is 12, more than DB_POOL_MAX (8)');
    expect(configWarnings(loadConfig({ ...pool, WORKER_LANES: 'reads' }))).toEqual([]);
    const analytics = { WORKER_ANALYTICS_CONCURRENCY: '4', DB_ANALYTICS_POOL_MAX: '2' };
    expect(configWarnings(loadConfig(analytics)).join('\n')).toContain('WORKER_ANALYTICS_CONCURRENCY is 4');
    expect(configWarnings(loadConfig({ ...analytics, WORKER_LANES: 'writes,reads' }))).toEqual([]);
  });

  it('requires SASL credentials with a mechanism', () => {
    expect(() => loadConfig({ KAFKA_SASL_MECHANISM: 'plain' })).toThrow('KAFKA_SASL_USERNAME');
  });
});

describe('logging', () => {
  it('redacts passwords in connection strings, wherever they appear', () => {
    expect(redactUrl('postgres://app:s3cret@db:5432/x and amqp://u:p@h')).toBe(
      'postgres://app:***@db:5432/x and amqp://u:***@h',
    );
    // A long run of letters (anyone's text in a log field) costs linear time: it took 6 s at 80,000.
    const started = performance.now();
    const long = `${'a'.repeat(400_000)}postgres://app:s3cret@db`;
    expect(redactUrl(long)).toBe(`${'a'.repeat(400_000)}postgres://app:***@db`);
    expect(performance.now() - started).toBeLessThan(2_000);
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const testLogger = createLogger('info', {}, sink);
    testLogger.info(
      { url: 'postgres://app:s3cret@db/x', password: 'hunter2' },
      'connecting to postgres://app:s3cret@db/x',
    );
    const out = lines.join('');
    expect(out).not.toContain('s3cret');
    expect(out).not.toContain('hunter2');
    expect(out).toContain('app:***@db');
  });
});
