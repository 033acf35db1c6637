// Compatibility with the seed storage layer (issue 21): its own calls, as its ModelContractEffect
// serialised them, through Kafka against a real worker, first with the Python client
// (clients/python), then as plain JSON from kcat; each result must carry the keys and values the seed
// returned. And the seed README's four examples, as Python with only the import and the constructor's
// argument changed.
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { brokers, type CollectedMessage } from '../support/kafka.ts';
import { createStack, type Stack } from '../support/stack.ts';
import {
  CALLS,
  checkCall,
  FIXTURE,
  path,
  PYTHON,
  resolve,
  run,
  TOPIC_OF_NODE,
  type SeedCall,
  type WireResult,
} from './seed-calls.ts';

vi.setConfig({ testTimeout: 180_000, hookTimeout: 60_000 });

const EXAMPLES = join(import.meta.dirname, '../../clients/python/examples/seed_readme_examples.py');
const RUNNER = join(import.meta.dirname, 'run_seed_calls.py');

async function workerStack(): Promise<Stack> {
  const stack = await createStack({ reply: true });
  await stack.worker();
  return stack;
}

function clientEnv(stack: Stack): Record<string, string> {
  return {
    KAFKA_BROKERS: brokers().join(','),
    TOPIC_PREFIX: stack.names.prefix,
    PYTHONDONTWRITEBYTECODE: '1',
  };
}

/** The sent body matches the transcription: same fields, placeholders filled in. */
function expectTranscribed(
  call: SeedCall,
  sent: Record<string, unknown>,
  saved: Record<string, unknown>,
): void {
  const expected = resolve(call.contract, saved) as Record<string, unknown>;
  expect(Object.keys(sent).sort(), call.name).toEqual(Object.keys(expected).sort());
  for (const [key, value] of Object.entries(expected)) {
    if (typeof value === 'string' && value.startsWith('$'))
      expect(typeof sent[key], `${call.name}: ${key}`).toBe('string');
    else expect(sent[key], `${call.name}: ${key}`).toEqual(value);
  }
}

describe("the seed README's four examples, as Python", () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await workerStack();
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('run with the Python client and print what the seed printed', async () => {
    const out = await run(PYTHON, [EXAMPLES], clientEnv(stack));
    expect(out.code, out.stderr).toBe(0);
    const lines = out.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^Success: True, Pattern ID: [0-9a-f-]{36}$/);
    expect(lines.slice(1)).toEqual([
      'AsyncDatabaseWriterPattern: 0.92',
      'Quality improvement: 0.23',
      'Usage count: 1',
      'Success rate: 1',
      'Avg quality improvement: 0.23',
    ]);
  });
});

describe("the seed's calls through the Python client", () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await workerStack();
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('get the keys and values the seed returned', async () => {
    const out = await run(PYTHON, [RUNNER, FIXTURE], clientEnv(stack));
    expect(out.code, out.stderr).toBe(0);
    const lines = out.stdout
      .trim()
      .split('\n')
      .map(
        (l) =>
          JSON.parse(l) as {
            name: string;
            sent: Record<string, unknown>;
            saved: Record<string, unknown>;
            result: WireResult;
          },
      );
    const late = lines.pop() as unknown as {
      name: string;
      timed_out: { success: boolean; error_code: string; error: string };
      picked: WireResult;
    };
    expect(lines.map((l) => l.name)).toEqual(CALLS.map((c) => c.name));
    // A call that timed out is a failed result naming get_result; the write was applied all the same.
    expect(late.timed_out).toMatchObject({ success: false, error_code: 'TIMEOUT' });
    expect(late.timed_out.error).toContain('get_result(');
    expect(late.picked).toMatchObject({
      success: true,
      data: {
        status: 'applied',
        operation: 'insert',
        result: { success: true, data: { pattern_name: 'CompatLate' } },
      },
    });
    CALLS.forEach((call, i) => {
      const line = lines[i] as (typeof lines)[number];
      expectTranscribed(call, line.sent, line.saved);
      checkCall(call, line.result, line.saved);
    });
  });
});

describe("the seed's calls as plain JSON from kcat", () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await workerStack();
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('get the keys and values the seed returned', async () => {
    const saved: Record<string, unknown> = {};
    const naive = (ms: number) => new Date(Date.now() + ms).toISOString().replace('Z', '');
    const times: Record<string, string> = {
      $now: naive(0),
      '$now-30d': naive(-30 * 86_400_000),
      '$now+1m': naive(60_000),
    };
    for (const call of CALLS) {
      const cid = randomUUID();
      const body = JSON.parse(
        JSON.stringify(resolve(call.contract, saved), (_k, v: unknown) =>
          v === '$cid' ? cid : typeof v === 'string' && v in times ? times[v] : v,
        ),
      ) as Record<string, unknown>;
      const topic = TOPIC_OF_NODE[call.node];
      const key = typeof body.pattern_id === 'string' ? ['-k', body.pattern_id] : [];
      const sent = await runWithInput(
        [
          '-P',
          '-b',
          brokers().join(','),
          '-t',
          stack.names.request(topic),
          ...key,
          '-H',
          'content-type=application/json',
        ],
        `${JSON.stringify(body)}\n`,
      );
      expect(sent.code, sent.stderr).toBe(0);
      // A refused request goes to the dead-letter topic; without a reply path that is its only answer.
      const resultTopic = stack.names.result(topic);
      const dlqTopic = stack.names.dlq(topic);
      const answer = (all: CollectedMessage[]) =>
        all.find(
          (m) =>
            (m.topic === resultTopic && m.json<WireResult>().metadata.correlation_id === cid) ||
            (m.topic === dlqTopic && m.json<{ correlation_id?: string }>().correlation_id === cid),
        );
      await stack.results.waitFor((all) => answer(all) !== undefined, 30_000, `the answer to ${call.name}`);
      const found = answer(stack.results.messages) as CollectedMessage;
      const result: WireResult =
        found.topic === resultTopic
          ? found.json<WireResult>()
          : {
              success: false,
              data: null,
              error: {
                code: String(found.headers['kafka_dlt-exception-fqcn']),
                message: String(found.headers['kafka_dlt-exception-message']),
              },
              metadata: {},
            };
      checkCall(call, result, saved);
      for (const [name, where] of Object.entries(call.save ?? {})) saved[name] = path(result.data, where);
    }
  });
});

function runWithInput(args: string[], input: string) {
  return new Promise<{ code: number; stderr: string }>((done) => {
    void import('node:child_process').then(({ spawn }) => {
      const child = spawn('/usr/bin/kcat', args, { stdio: ['pipe', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('close', (code) => done({ code: code ?? 1, stderr }));
      child.stdin.end(input);
    });
  });
}
