// The broker-restart loop (issue 24, "Done when"): a stream of 3,000 usage events over 100 patterns while
// the broker (one this test owns, never the shared one) is SIGKILLed and started again at least 5 times.
// Every event must be applied exactly once (events per pattern, usage_count, success_count) and answered
// (a result with its correlation id), and the worker must be the same process throughout. The final
// check reads the result topics with librdkafka from the start, independently of the collector that
// lived through the kills.
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import type { ModelResult } from '../../src/contracts/results.ts';
import { createStackRetrying } from '../support/faults.ts';
import { Collector, type CollectedMessage } from '../support/kafka.ts';
import { startOwnKafka, type OwnKafka } from '../support/own-kafka.ts';
import { readTopics } from '../support/poison/client.ts';
import type { Stack } from '../support/stack.ts';
import type { WorkerProcess } from '../support/worker-process.ts';
import {
  produce,
  reportFigures,
  ResultTracker,
  Workload,
  type WorkloadRequest,
} from '../support/workload.ts';

vi.setConfig({ testTimeout: 420_000 });

const KILLS = 5;
const CHUNK = 25;
const CHUNK_PAUSE_MS = 1_000;
/** Answers to see after a restart before the next kill (the worker is back and working). */
const PROGRESS = 50;
const PROGRESS_TIMEOUT_MS = 120_000;

let kafka: OwnKafka;
let stack: Stack;
let worker: WorkerProcess;
beforeAll(async () => {
  kafka = await startOwnKafka();
  process.env.KAFKA_BROKERS = kafka.brokers;
  stack = await createStackRetrying({ partitions: 3 });
}, 150_000);
afterAll(async () => {
  await stack?.close().catch(() => undefined);
  await kafka?.destroy();
}, 60_000);

/** Sends one chunk, again and again until the broker takes it (a resend is the same requests). */
async function sendChunk(requests: WorkloadRequest[], resends: { n: number }): Promise<void> {
  for (;;) {
    try {
      await produce(stack.producer, stack.names, requests, { chunk: requests.length });
      return;
    } catch {
      resends.n++;
      await new Promise((r) => setTimeout(r, 1_000));
    }
  }
}

it('applies and answers every usage event exactly once across repeated broker SIGKILLs', async () => {
  const started = Date.now();
  const workload = new Workload({ patterns: 100, usagePerPattern: 30, relationships: 0, searches: 0 });
  const tracker = new ResultTracker(stack.results);
  worker = await stack.worker();
  const pid = worker.child.pid;
  const exits: string[] = [];
  worker.child.on('exit', (code, signal) => exits.push(`${code ?? ''} ${signal ?? ''}`));
  await produce(stack.producer, stack.names, workload.inserts);
  await tracker.waitAnswered(workload.inserts, 60_000);

  // A steady stream of usage events (it stalls, resending, while the broker is away). Each cycle waits
  // until the worker answers again (it came back from the previous kill), then SIGKILLs the broker right
  // after a chunk was accepted, so that events are in flight at every kill.
  const events = workload.followUps;
  const resends = { n: 0 };
  let sent = 0;
  let paced = true;
  // Each cycle may send its share of the events, so that some are left for every kill.
  const share = Math.floor(events.length / (KILLS + 1));
  let allowance = share;
  let chunkSent: () => void = () => undefined;
  const nextChunk = () => new Promise<void>((resolve) => (chunkSent = resolve));
  const streaming = (async () => {
    for (let i = 0; i < events.length; i += CHUNK) {
      while (paced && sent >= allowance) await new Promise((r) => setTimeout(r, 100));
      await sendChunk(events.slice(i, i + CHUNK), resends);
      sent = Math.min(events.length, i + CHUNK);
      chunkSent();
      if (paced) await new Promise((r) => setTimeout(r, CHUNK_PAUSE_MS));
    }
  })();
  const answered = () => events.length - tracker.missing(events).length;
  const kills: { at_s: number; sent: number; answered: number; progress_wait_ms: number; down_ms: number }[] =
    [];
  const stalls: string[] = [];
  for (let k = 0; k < KILLS; k++) {
    const before = answered();
    const waitFrom = Date.now();
    const progressed = await tracker.collector
      .waitFor(() => answered() >= before + PROGRESS, PROGRESS_TIMEOUT_MS, 'progress')
      .then(() => true)
      .catch(() => false);
    if (!progressed)
      stalls.push(`cycle ${k + 1}: fewer than ${PROGRESS} answers within ${PROGRESS_TIMEOUT_MS} ms`);
    // Right after a chunk is accepted; if the cycle's share is all sent already, kill anyway.
    await Promise.race([nextChunk(), streaming, new Promise((r) => setTimeout(r, 5_000))]);
    const downAt = Date.now();
    const kill = {
      at_s: Math.round((downAt - started) / 1000),
      sent,
      answered: answered(),
      progress_wait_ms: downAt - waitFrom,
      down_ms: 0,
    };
    kills.push(kill);
    await kafka.kill();
    await new Promise((r) => setTimeout(r, 1_000));
    await kafka.start();
    kill.down_ms = Date.now() - downAt;
    allowance += share;
  }
  paced = false;
  await streaming;

  let waitError: string | undefined;
  await tracker.waitAnswered(workload.all, 120_000).catch((err: unknown) => {
    waitError = String(err);
  });

  // Answered: read every result topic from the start with an independent client.
  const topics = stack.names.all().map((t) => t.name);
  const read = await readTopics(kafka.brokers, topics);
  const independent = new Collector(stack.kafka, []);
  for (const r of read.records) {
    const value = r.value?.hex !== undefined ? Buffer.from(r.value.hex, 'hex') : null;
    const message: CollectedMessage = {
      topic: r.topic,
      partition: r.partition,
      offset: String(r.offset),
      key: null,
      value,
      headers: {},
      timestamp: String(r.timestamp),
      receivedAt: 0,
      json<T>() {
        return JSON.parse(value?.toString('utf8') ?? 'null') as T;
      },
    };
    if (!r.topic.endsWith('.dlq')) independent.messages.push(message);
  }
  const figures = await workload.check(stack.db.pool, new ResultTracker(independent), stack.names);
  const deadLetters = read.records.filter((r) => r.topic.endsWith('.dlq')).length;
  const failed = independent.messages.filter((m) => m.json<ModelResult>().success === false).length;
  await reportFigures('broker-restart-loop', {
    kills,
    stalls,
    resent_chunks: resends.n,
    collector_wait: waitError ?? 'all answered',
    dead_letters: deadLetters,
    failed_results: failed,
    ...figures,
    duration_s: Math.round((Date.now() - started) / 1000),
  });
  if (figures.problems.length > 0 || waitError) {
    console.log(`the worker's last log lines:\n${worker.output().split('\n').slice(-80).join('\n')}`);
  }

  expect(kills.length).toBeGreaterThanOrEqual(5);
  // Every kill hit events in flight, and the worker came back to work after each.
  expect(kills.filter((k) => k.answered < k.sent).length).toBe(kills.length);
  expect(stalls).toEqual([]);
  expect(exits).toEqual([]);
  expect(worker.child.pid).toBe(pid);
  expect(worker.child.exitCode).toBeNull();
  expect(figures.problems).toEqual([]);
  expect({ lost: figures.lost, doubled: figures.doubled, answered: figures.answered }).toEqual({
    lost: 0,
    doubled: 0,
    answered: workload.size,
  });
  expect({ deadLetters, failed }).toEqual({ deadLetters: 0, failed: 0 });
});
