// The ordered publisher over a fake sender: one send in flight carrying what queued meanwhile, the same
// records in the same order after a transient failure, every record checked before it is queued, and a
// record the broker refuses for good isolated and replaced while the records behind it go on.
import { describe, expect, it } from 'vitest';
import type { OutboundRecord } from '../../src/messaging/engine/records.ts';
import { Lifecycle } from '../../src/messaging/engine/lifecycle.ts';
import { SendError, type RecordSender } from '../../src/messaging/engine/ports.ts';
import { OrderedPublisher } from '../../src/messaging/engine/publisher.ts';
import { recordSize } from '../../src/messaging/engine/record-size.ts';
import { createLogger } from '../../src/telemetry/logger.ts';

class FakeSender implements RecordSender {
  readonly sent: string[][] = [];
  transientFailures = 0;
  /** Values the broker refuses for good. */
  readonly refuse = new Set<string>();
  /** Topics the broker does not know (deleted). */
  readonly unknown = new Set<string>();
  /** Topics that refuse every record (compacted, a small max.message.bytes): a send holding one fails,
   * and its records for other topics are appended all the same, as Kafka appends each partition apart. */
  readonly refusingTopics = new Set<string>();
  inFlight = 0;
  maxInFlight = 0;
  async send(records: readonly OutboundRecord[]) {
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    await new Promise((r) => setTimeout(r, 2));
    this.inFlight--;
    if (this.transientFailures > 0) {
      this.transientFailures--;
      throw new SendError('KafkaJSConnectionError: broker unavailable', false);
    }
    const gone = records.find((r) => this.unknown.has(r.topic));
    if (gone)
      throw new SendError(`UserError: Unknown topic ${gone.topic}.`, false, { unknownTopic: gone.topic });
    if (records.some((r) => this.refusingTopics.has(r.topic))) {
      this.sent.push(records.filter((r) => !this.refusingTopics.has(r.topic)).map((r) => String(r.value)));
      throw new SendError('INVALID_RECORD: Compacted topic cannot accept message without key', true);
    }
    if (records.some((r) => this.refuse.has(String(r.value)))) {
      throw new SendError('KafkaJSProtocolError: MESSAGE_TOO_LARGE', true);
    }
    this.sent.push(records.map((r) => String(r.value)));
  }
}

const record = (value: string, ifRefused?: OutboundRecord['ifRefused']): OutboundRecord => ({
  topic: 'results',
  key: 'k',
  value,
  headers: {},
  ifRefused,
});

function publisher(sender: FakeSender, lifecycle = new Lifecycle()) {
  return new OrderedPublisher({
    sender,
    check: (r) =>
      String(r.value).startsWith('bad')
        ? 'its header "constructor" has a value that is a function'
        : undefined,
    lane: 'test',
    lifecycle,
    backoff: { initialMs: 1, maxMs: 2 },
    logger: createLogger('silent'),
  });
}

describe('OrderedPublisher', () => {
  it('refuses the records of a reply topic deleted after it was checked; the others go on', async () => {
    const sender = new FakeSender();
    sender.unknown.add('reply.gone');
    const lifecycle = new Lifecycle();
    const refused: string[] = [];
    lifecycle.on('record.refused', ({ topic, reason }) => refused.push(`${topic}: ${reason}`));
    const p = publisher(sender, lifecycle);
    const reply: OutboundRecord = {
      ...record('answer', () => [record('error result'), { ...record('dead letter'), topic: 'dlq' }]),
      topic: 'reply.gone',
      requestedTopic: true,
    };
    const started = Date.now();
    await Promise.all([p.publish([record('a'), reply, record('b')]), p.publish([record('c')])]);
    // Once it has stayed unknown for a second (a topic just created can be unknown to a broker a moment).
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_000);
    // The worker's own topics go first, each reply topic in a send of its own; its replacement follows.
    expect(sender.sent.flat()).toEqual(['a', 'b', 'error result', 'dead letter', 'c']);
    expect(refused).toEqual(['reply.gone: the reply topic reply.gone does not exist']);
  });

  it('replaces the records of several deleted reply topics each once, and sends every other once', async () => {
    const sender = new FakeSender();
    sender.unknown.add('gone.1').add('gone.2').add('gone.3');
    const p = publisher(sender);
    const reply = (topic: string): OutboundRecord => ({
      ...record(`to ${topic}`, () => [
        record(`error for ${topic}`),
        { ...record(`dlq for ${topic}`), topic: 'dlq' },
      ]),
      topic,
      requestedTopic: true,
    });
    await Promise.all([
      p.publish([record('a'), reply('gone.1')]),
      p.publish([record('b'), reply('gone.2'), reply('gone.3'), record('c')]),
    ]);
    // Each sent once; a send's replacements after the records of the worker's own topics.
    expect(sender.sent.flat()).toEqual([
      'a',
      'error for gone.1',
      'dlq for gone.1',
      'b',
      'c',
      'error for gone.2',
      'dlq for gone.2',
      'error for gone.3',
      'dlq for gone.3',
    ]);
  });

  it('retries, as transient, a send whose unknown topic is its own', async () => {
    const sender = new FakeSender();
    sender.unknown.add('results');
    const p = publisher(sender);
    const sent = p.publish([record('a')]);
    await new Promise((r) => setTimeout(r, 50));
    expect(sender.sent).toEqual([]);
    sender.unknown.clear();
    await sent;
    expect(sender.sent.flat()).toEqual(['a']);
  });

  it('keeps one send in flight and sends what queued meanwhile together, in order', async () => {
    const sender = new FakeSender();
    const p = publisher(sender);
    await Promise.all(['a', 'b', 'c', 'd'].map((v) => p.publish([record(v)])));
    expect(sender.maxInFlight).toBe(1);
    expect(sender.sent).toEqual([['a'], ['b', 'c', 'd']]);
    expect(p.pendingBytes).toBe(0);
  });

  it('sends the same records again after transient failures, none twice', async () => {
    const sender = new FakeSender();
    sender.transientFailures = 3;
    const p = publisher(sender);
    await Promise.all([p.publish([record('a')]), p.publish([record('b')])]);
    expect(sender.sent.flat()).toEqual(['a', 'b']);
  });

  it('replaces a record that fails the check before it is queued; the others go on', async () => {
    const sender = new FakeSender();
    const lifecycle = new Lifecycle();
    const refused: string[] = [];
    lifecycle.on('record.refused', ({ reason }) => refused.push(reason));
    const p = publisher(sender, lifecycle);
    await Promise.all([
      p.publish([record('a')]),
      p.publish([record('bad', (reason) => [record(`error: ${reason.slice(0, 14)}`)])]),
      p.publish([record('bad-without-replacement')]),
      p.publish([record('c')]),
    ]);
    expect(sender.sent.flat()).toEqual(['a', 'error: its header "co', 'c']);
    expect(refused).toHaveLength(2);
  });

  it('isolates a record the broker refuses for good, publishes its replacement in its place, and goes on', async () => {
    const sender = new FakeSender();
    sender.refuse.add('huge');
    const p = publisher(sender);
    // Queued while the first send is in flight: the next send carries all of them.
    const first = p.publish([record('a')]);
    const rest = [
      p.publish([record('b')]),
      p.publish([record('huge', () => [record('too-large-error'), record('dead-letter')])]),
      p.publish([record('c')]),
    ];
    await Promise.all([first, ...rest]);
    expect(sender.sent.flat()).toEqual(['a', 'b', 'too-large-error', 'dead-letter', 'c']);
  });

  it("never sends other callers' results again because a reply topic a request named refused its record", async () => {
    const sender = new FakeSender();
    sender.refusingTopics.add('compacted');
    const p = publisher(sender);
    const toReply = (value: string, topic: string): OutboundRecord => ({
      ...record(value, () => [record(`error for ${value}`), { ...record(`dlq for ${value}`), topic: 'dlq' }]),
      topic,
      requestedTopic: true,
    });
    // Victims answered on their own reply topic and on the result topic, hostile requests among them.
    const batch = Array.from({ length: 40 }, (_, i) =>
      i % 4 === 0
        ? toReply(`hostile-${i}`, 'compacted')
        : i % 2
          ? toReply(`v-${i}`, 'victims')
          : record(`r-${i}`),
    );
    await p.publish(batch);
    const sent = sender.sent.flat();
    const counts = new Map<string, number>();
    for (const v of sent) counts.set(v, (counts.get(v) ?? 0) + 1);
    expect(
      [...counts.values()].every((n) => n === 1),
      JSON.stringify([...counts]),
    ).toBe(true);
    expect(sent.filter((v) => v.startsWith('v-') || v.startsWith('r-'))).toHaveLength(30);
    expect(sent.filter((v) => v.startsWith('error for hostile'))).toHaveLength(10);
  });

  it('drops a refused record whose replacement is refused too, after two levels', async () => {
    const sender = new FakeSender();
    sender.refuse.add('huge').add('still-huge');
    const p = publisher(sender);
    const again = (): OutboundRecord[] => [record('still-huge', again)];
    await p.publish([record('huge', again), record('after')]);
    expect(sender.sent.flat()).toEqual(['after']);
  });

  it('splits sends above the request bound, in order, a larger record alone', async () => {
    const sender = new FakeSender();
    const p = new OrderedPublisher({
      sender,
      check: () => undefined,
      lane: 'test',
      lifecycle: new Lifecycle(),
      backoff: { initialMs: 1, maxMs: 2 },
      logger: createLogger('silent'),
      maxRequestBytes: 1000,
    });
    const sized = (name: string, n: number) => record(name.padEnd(n, '.'));
    await p.publish([sized('a', 400), sized('b', 400), sized('c', 2000), sized('d', 100)]);
    expect(sender.sent.map((send) => send.map((v) => v[0]))).toEqual([['a', 'b'], ['c'], ['d']]);
    expect(recordSize({ topic: 't', key: 'k', value: 'vv', headers: { h: 'x' } })).toBe(
      64 + 1 + 2 + 1 + 1 + 10,
    );
  });

  it('rejects what is left when closed', async () => {
    const sender = new FakeSender();
    sender.transientFailures = 100;
    const p = publisher(sender);
    const pending = p.publish([record('a')]);
    p.close();
    await expect(pending).rejects.toThrow(/closed/);
  });
});
