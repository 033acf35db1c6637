// The Python client (clients/python) against hostile bytes on its reply partition: anyone who may write
// to the reply topic can put any record there. Records that are not replies must be passed over: not
// end the client's reader thread (every request would then time out), not abort the interpreter. The
// records come from the library's own producer, which can send what no well-behaved client does: a
// header name that is not UTF-8, headers without a value (20,000 of them), each of which crashes a
// reader on Debian 12's confluent-kafka 1.7.0 that reads the headers (the client does not), and values
// that are not results.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { ProduceAcks, Producer } from '@platformatic/kafka';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { brokers } from '../support/kafka.ts';
import { createStack, type Stack } from '../support/stack.ts';

vi.setConfig({ testTimeout: 120_000, hookTimeout: 60_000 });

const SCRIPT = join(import.meta.dirname, 'python_hostile_replies.py');
const b = (s: string) => Buffer.from(s);

let stack: Stack;
beforeAll(async () => {
  stack = await createStack({ reply: true });
  await stack.worker();
});
afterAll(async () => {
  await stack?.close();
});

/** Records a reply reader meets and must pass over, each alone in the reply partition. */
function hostileRecords(topic: string, partition: number) {
  const nullHeaders = new Map<Buffer, Buffer | null>();
  for (let i = 0; i < 20_000; i++) nullHeaders.set(b('n'), null);
  const badName = new Map<Buffer, Buffer | null>([[Buffer.from([0xc3, 0x28]), b('x')]]);
  const values: [Buffer | undefined, Map<Buffer, Buffer | null>][] = [
    [b('{"success": true}'), nullHeaders],
    [b('{"success": true, "metadata": {"correlation_id": "x"}}'), badName],
    [b('{"metadata": [1]}'), new Map()],
    [b('{"metadata": {"correlation_id": 5}}'), new Map()],
    [b('['.repeat(100_000)), new Map()],
    [b('"a string"'), new Map([[b('kafka_correlationId'), b('x')]])],
    [Buffer.from([0xff, 0xfe]), new Map()],
    [undefined, new Map()],
  ];
  return values.map(([value, headers]) => ({
    topic,
    partition,
    value: value as Buffer,
    // The library's types say Buffer; its writer sends null as a header without a value.
    headers: headers as Map<Buffer, Buffer>,
  }));
}

it('passes over records on its reply partition that are not replies, and answers the next request', async () => {
  const child = spawn('/usr/bin/python3', [SCRIPT], {
    env: {
      ...process.env,
      KAFKA_BROKERS: brokers().join(','),
      TOPIC_PREFIX: stack.names.prefix,
      PYTHONDONTWRITEBYTECODE: '1',
    },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code, signal) => {
      if (signal) stderr += `(killed by ${signal})`;
      resolve(code);
    }),
  );
  const lines = createInterface({ input: child.stdout });
  const out: string[] = [];
  const ready = new Promise<number>((resolve) =>
    lines.on('line', (line) => {
      out.push(line);
      const m = /^ready (\d+)$/.exec(line);
      if (m) resolve(Number(m[1]));
    }),
  );
  const partition = await Promise.race([
    ready,
    exited.then((code) => {
      throw new Error(`the client exited (${code}) before it was ready: ${stderr}`);
    }),
  ]);

  const producer = new Producer({ clientId: 'hostile-replies', bootstrapBrokers: brokers() });
  try {
    await producer.send({
      messages: hostileRecords(stack.names.reply(), partition),
      acks: ProduceAcks.ALL,
    });
  } finally {
    await producer.close();
  }
  child.stdin.end('go\n');

  const code = await exited;
  expect(code, `the client's exit code (134: aborted); stderr: ${stderr}`).toBe(0);
  const result = JSON.parse(out.at(-1) ?? '{}') as Record<string, unknown>;
  expect(result).toEqual({ success: true, error_code: null, reader_alive: true });
});
