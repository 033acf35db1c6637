// The replay driver under a rate budget decodes only about a second of its budget ahead: decoding its
// whole queue at once is a burst of CPU beside the live worker the budget is there to spare.
import { expect, it } from 'vitest';
import { Lifecycle } from '../../src/messaging/engine/lifecycle.ts';
import type { UnitOutput, UnitWork } from '../../src/messaging/engine/ports.ts';
import type { InboundMessage } from '../../src/messaging/engine/records.ts';
import { runReplay, type ReplaySource } from '../../src/messaging/operations/replay-driver.ts';
import type { Prepared } from '../../src/messaging/stages/prepare.ts';
import { createLogger } from '../../src/telemetry/logger.ts';

function source(count: number): ReplaySource & { taken: number } {
  const s = {
    taken: 0,
    get done() {
      return s.taken >= count;
    },
    take(): InboundMessage | undefined {
      if (s.taken >= count) return undefined;
      const offset = s.taken++;
      return {
        topic: 'pattern.usage',
        partition: 0,
        offset: String(offset),
        key: null,
        value: Buffer.from('{}'),
        headers: {},
        timestamp: String(offset),
      };
    },
    wait: (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, Math.min(ms, 5))),
  };
  return s;
}

/** Work that records how many messages were decoded before each unit ran; every message applies. Each
 * prepared message holds `memoryBytes`. */
function work(src: { taken: number }, memoryBytes = 66) {
  const aheadAtRun: number[] = [];
  let ran = 0;
  const w: UnitWork<Prepared> = {
    prepare: (message) =>
      ({
        message,
        logical: 'pattern.usage',
        request: undefined,
        error: undefined,
        context: { identity: `id-${message.offset}` },
        batchWith: 'record_usage',
        correlationId: `c-${message.offset}`,
        key: null,
        memoryBytes,
      }) as unknown as Prepared,
    run: (_unit, items) => {
      aheadAtRun.push(src.taken - ran);
      ran += items.length;
      const output: UnitOutput = {
        records: [],
        outcomes: items.map((p) => ({
          message: p.message,
          logical: 'pattern.usage',
          operation: 'record_usage',
          result: { success: true, metadata: {} } as never,
          deadLettered: false,
        })),
      };
      return Promise.resolve(output);
    },
    giveUp: () => ({ records: [], outcomes: [] }),
  };
  return { w, aheadAtRun };
}

async function replay(maxRatePerSecond: number, count: number, memoryBytes?: number) {
  const src = source(count);
  const { w, aheadAtRun } = work(src, memoryBytes);
  const summary = await runReplay({
    source: src,
    work: w,
    publisher: { publish: () => Promise.resolve(), pendingBytes: 0 },
    lifecycle: new Lifecycle(() => undefined),
    logger: createLogger('silent'),
    refusedLive: new Map(),
    concurrency: 1,
    maxRatePerSecond,
    maxBatch: 500,
    maxBatchBytes: 1_000_000,
    retry: { maxAttempts: 3, backoff: { initialMs: 1, maxMs: 2 } },
    maxQueued: 5000,
  });
  return { summary, aheadAtRun };
}

it('under a rate, decodes at most a second of its budget ahead of what ran, and still applies every message', async () => {
  const { summary, aheadAtRun } = await replay(2000, 3000);
  expect(summary.applied).toBe(3000);
  expect(Math.max(...aheadAtRun)).toBeLessThanOrEqual(2000);
});

it('without a rate, looks ahead as far as its queue allows', async () => {
  const { summary, aheadAtRun } = await replay(0, 3000);
  expect(summary.applied).toBe(3000);
  expect(aheadAtRun[0]).toBe(3000);
});

it('holds no more than 16 MiB of parsed requests ahead, however few messages that is', async () => {
  // Each parsed request holds 3 MiB (a valid 1 MB request of 50,000 empty objects does): 5,000 queued
  // would be 15 GB.
  const { summary, aheadAtRun } = await replay(0, 200, 3 * 1024 * 1024);
  expect(summary.applied).toBe(200);
  expect(Math.max(...aheadAtRun)).toBeLessThanOrEqual(6);
});
