// Clients nobody here wrote, unchanged, against the worker process: NestJS's ClientKafka and kcat.
// (Spring's binary header encodings are checked byte for byte in test/messaging/worker.e2e.test.ts.)
import 'reflect-metadata';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import { Logger } from '@nestjs/common';
import { ClientKafka } from '@nestjs/microservices';
import { lastValueFrom, toArray } from 'rxjs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { ModelResult } from '../../src/contracts/results.ts';
import { brokers } from '../support/kafka.ts';
import { KafkaClient } from '../../src/messaging/kafka/client.ts';
import { createTopicsAndWait } from '../../src/messaging/kafka/topic-admin.ts';
import { createStack, type Stack } from '../support/stack.ts';

vi.setConfig({ testTimeout: 90_000 });
const run = promisify(execFile);
// NestJS logs every kafkajs line through its own logger; the assertions say what matters.
Logger.overrideLogger(false);

describe('NestJS ClientKafka.send()', () => {
  let stack: Stack;
  let nest: ClientKafka;
  beforeAll(async () => {
    stack = await createStack({ partitions: 1 });
    const insert = stack.names.request('pattern.insert');
    const search = stack.names.request('pattern.search.request');
    // NestJS replies on "<pattern>.reply"; the worker only replies to topics that exist.
    const admin = new KafkaClient('pattern-worker-test', { brokers: brokers() }).admin();
    await admin.connect();
    await createTopicsAndWait(
      admin,
      [`${insert}.reply`, `${search}.reply`].map((topic) => ({ topic, numPartitions: 2 })),
    );
    await admin.disconnect();
    await stack.worker();
    nest = new ClientKafka({
      client: { clientId: 'nest-interop', brokers: brokers() },
      consumer: { groupId: `${stack.names.prefix}nest` },
    });
    nest.subscribeToResponseOf(insert);
    nest.subscribeToResponseOf(search);
    await nest.connect();
  });
  afterAll(async () => {
    await nest.close();
    await stack.close();
  });

  it('gets the result through its observable, which then completes', async () => {
    const id = randomUUID();
    const emitted = await lastValueFrom(
      nest
        .send<ModelResult<{ pattern_id: string }>>(stack.names.request('pattern.insert'), {
          operation: 'insert',
          data: {
            pattern_id: id,
            pattern_name: 'NestInserted',
            pattern_type: 'code',
            language: 'typescript',
          },
        })
        .pipe(toArray()),
    );
    // toArray() only emits once the observable has completed: exactly one value, then completion.
    expect(emitted).toHaveLength(1);
    expect(emitted[0]?.success).toBe(true);
    expect(emitted[0]?.data?.pattern_id).toBe(id);

    const found = await lastValueFrom(
      nest.send<ModelResult<{ pattern_name: string }>>(stack.names.request('pattern.search.request'), {
        operation: 'get_by_id',
        pattern_id: id,
      }),
    );
    expect(found.data?.pattern_name).toBe('NestInserted');
  });

  it('gets error results as values, with the code', async () => {
    const result = await lastValueFrom(
      nest.send<ModelResult>(stack.names.request('pattern.search.request'), {
        operation: 'get_by_id',
        pattern_id: 'not-a-uuid',
      }),
    );
    expect(result.success).toBe(false);
    expect(result.error?.code).toBe('VALIDATION_ERROR');
    expect(result.error?.message).toContain('pattern_id');
  });
});

describe('kcat, plain JSON with no headers', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await createStack({ partitions: 1 });
    await stack.worker();
  });
  afterAll(async () => stack.close());

  it('lands the result on the result topic, readable by kcat', async () => {
    const id = randomUUID();
    const body = JSON.stringify({
      data: { pattern_id: id, pattern_name: 'KcatPattern', pattern_type: 'code', language: 'go' },
    });
    const broker = brokers()[0] as string;
    const produce = run('kcat', ['-P', '-b', broker, '-t', stack.names.request('pattern.insert')]);
    produce.child.stdin?.end(`${body}\n`);
    await produce;

    const resultTopic = stack.names.result('pattern.insert');
    await stack.results.waitForCount(resultTopic, 1);
    const { stdout } = await run('kcat', [
      '-C',
      '-b',
      broker,
      '-t',
      resultTopic,
      '-o',
      'beginning',
      '-c',
      '1',
      '-e',
      '-f',
      '%h\\n%s\\n',
    ]);
    const [headers, value] = stdout.split('\n');
    const result = JSON.parse(value ?? '') as ModelResult<{ pattern_id: string }>;
    expect(result.success).toBe(true);
    expect(result.data?.pattern_id).toBe(id);
    expect(result.metadata.operation).toBe('insert');
    expect(result.metadata.source?.topic).toBe(stack.names.request('pattern.insert'));
    expect(headers).toContain('content-type=application/json');
    const { rows } = await stack.db.pool.query('SELECT pattern_name FROM pattern_templates WHERE id = $1', [
      id,
    ]);
    expect(rows).toEqual([{ pattern_name: 'KcatPattern' }]);
  });
});
