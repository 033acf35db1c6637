// The ordered publisher over a fake producer: one request in flight carrying what queued meanwhile, the
// same records in the same order after a failure, and a new producer after repeated failures.
import { describe, expect, it } from 'vitest';
import type { OutboundRecord } from '../../src/messaging/engine/records.ts';
import { Lifecycle } from '../../src/messaging/engine/lifecycle.ts';
import { OrderedPublisher } from '../../src/messaging/engine/publisher.ts';
import { createLogger } from '../../src/telemetry/logger.ts';

type Sent = { topic: string; messages: { value: unknown }[] }[];

class FakeProducer {
  readonly sent: string[][] = [];
  failures = 0;
  inFlight = 0;
  maxInFlight = 0;
  async sendBatch({ topicMessages }: { topicMessages: Sent }) {
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    await new Promise((r) => setTimeout(r, 2));
    this.inFlight--;
    if (this.failures > 0) {
      this.failures--;
      throw Object.assign(new Error('broker unavailable'), { name: 'KafkaJSConnectionError' });
    }
    this.sent.push(topicMessages.flatMap((t) => t.messages.map((m) => String(m.value))));
    return [];
  }
}

const record = (value: string): OutboundRecord => ({ topic: 'results', key: 'k', value, headers: {} });

function publisher(producer: FakeProducer, replacements: FakeProducer[] = []) {
  return new OrderedPublisher({
    producer: producer as never,
    lane: 'test',
    lifecycle: new Lifecycle(),
    backoff: { initialMs: 1, maxMs: 2 },
    logger: createLogger('silent'),
    replaceProducer: () => {
      const next = replacements.shift();
      if (!next) return Promise.reject(new Error('no producer left'));
      return Promise.resolve(next as never);
    },
  });
}

describe('OrderedPublisher', () => {
  it('keeps one request in flight and sends what queued meanwhile together, in order', async () => {
    const producer = new FakeProducer();
    const p = publisher(producer);
    await Promise.all(['a', 'b', 'c', 'd'].map((v) => p.publish([record(v)])));
    expect(producer.maxInFlight).toBe(1);
    expect(producer.sent).toEqual([['a'], ['b', 'c', 'd']]);
  });

  it('sends the same records again after a failure, and replaces the producer after three', async () => {
    const broken = new FakeProducer();
    broken.failures = 100;
    const fresh = new FakeProducer();
    const p = publisher(broken, [fresh]);
    await Promise.all([p.publish([record('a')]), p.publish([record('b')])]);
    expect(broken.sent).toEqual([]);
    expect(fresh.sent.flat()).toEqual(['a', 'b']);
  });

  it('rejects what is left when closed', async () => {
    const producer = new FakeProducer();
    producer.failures = 100;
    const p = publisher(producer);
    const pending = p.publish([record('a')]);
    p.close();
    await expect(pending).rejects.toThrow(/closed/);
  });
});
