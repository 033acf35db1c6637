import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.ts';
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

  it('requires SASL credentials with a mechanism', () => {
    expect(() => loadConfig({ KAFKA_SASL_MECHANISM: 'plain' })).toThrow('KAFKA_SASL_USERNAME');
  });
});

describe('logging', () => {
  it('redacts passwords in connection strings, wherever they appear', () => {
    expect(redactUrl('postgres://app:s3cret@db:5432/x and amqp://u:p@h')).toBe(
      'postgres://app:***@db:5432/x and amqp://u:***@h',
    );
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
