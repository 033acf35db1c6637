// Reply targets (issue 24): kafka_replyTopic is chosen by whoever writes the request, so it may only
// name topics the policy allows (WORKER_REPLY_TOPICS; by default the worker's prefix, or pattern.* with
// no prefix), never the worker's own request, result or dead-letter topics.
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { HEADERS } from '../../src/contracts/headers.ts';
import { TopicNames, type RequestTopic } from '../../src/contracts/topics.ts';
import type { InboundMessage } from '../../src/messaging/engine/records.ts';
import { errorResult } from '../../src/messaging/stages/dispatch.ts';
import { unitOutput } from '../../src/messaging/stages/outcomes.ts';
import { prepareMessage } from '../../src/messaging/stages/prepare.ts';
import { ReplyPolicy } from '../../src/messaging/stages/reply-policy.ts';

const refusedAll = (policy: ReplyPolicy, from: RequestTopic, topics: string[]) =>
  topics.filter((t) => policy.refusal(t, from) === undefined);

describe('the default reply policy', () => {
  it('without a prefix: pattern.* but none of the worker’s own topics', () => {
    const policy = new ReplyPolicy(new TopicNames(''));
    expect(policy.patterns).toEqual(['pattern.*']);
    const refused = [
      'other.tenant.results',
      '_schemas',
      'connect-offsets',
      'connect-configs',
      '__consumer_offsets',
      'pattern.insert',
      'pattern.insert.result',
      'pattern.insert.dlq',
      'pattern.usage',
      'pattern.search.request',
      'pattern.analytics.result',
      'staging.pattern.reply',
      'patterns',
    ];
    expect(refusedAll(policy, 'pattern.search.request', refused)).toEqual([]);
    const allowed = [
      'pattern.reply', // PatternClient
      'pattern.insert.reply', // NestJS ClientKafka: <request topic>.reply
      'pattern.search.request.reply',
      'pattern.insert.replies', // Spring reply topics named after the request topic
      'pattern.insert-replies',
    ];
    for (const t of allowed) expect(policy.refusal(t, 'pattern.insert')).toBeUndefined();
    // A request's own result topic is where its result goes anyway; another topic's is not.
    expect(policy.refusal('pattern.search.result', 'pattern.search.request')).toBeUndefined();
    expect(policy.refusal('pattern.insert.result', 'pattern.search.request')).toMatch(
      /kafka_replyTopic "pattern.insert.result" is one of the worker's result topics/,
    );
    expect(policy.refusal('pattern.insert', 'pattern.insert')).toMatch(/worker's request topics/);
    expect(policy.refusal('other.tenant.results', 'pattern.insert')).toMatch(
      /kafka_replyTopic "other.tenant.results" is not an allowed reply topic \(WORKER_REPLY_TOPICS: pattern\.\*\)/,
    );
  });

  it('with a prefix: the topics of the prefix, but not its own', () => {
    const names = new TopicNames('staging.');
    const policy = new ReplyPolicy(names);
    expect(policy.patterns).toEqual(['staging.*']);
    for (const t of ['staging.pattern.reply', 'staging.pattern.insert.reply', 'staging.custom.replies']) {
      expect(policy.refusal(t, 'pattern.insert')).toBeUndefined();
    }
    const refused = [
      'pattern.reply',
      'prod.pattern.reply',
      'staging.pattern.insert',
      'staging.pattern.usage.result',
      '_schemas',
    ];
    expect(refusedAll(policy, 'pattern.insert', refused)).toEqual([]);
    // The topics of a deployment with a longer prefix are in this one's prefix, but not for results.
    for (const t of [
      'staging.b.pattern.insert',
      'staging.b.pattern.usage.result',
      'staging.bpattern.usage.dlq',
    ])
      expect(policy.refusal(t, 'pattern.insert')).toMatch(
        /of a deployment of this worker with the prefix "staging\.b/,
      );
    expect(policy.refusal('staging.b.pattern.insert.reply', 'pattern.insert')).toBeUndefined();
  });

  it('follows WORKER_REPLY_TOPICS, whose patterns never open the worker’s own topics', () => {
    const config = loadConfig({ WORKER_REPLY_TOPICS: ' replies-* , exact.topic,*.reply' });
    expect(config.WORKER_REPLY_TOPICS).toEqual(['replies-*', 'exact.topic', '*.reply']);
    const policy = new ReplyPolicy(new TopicNames(''), config.WORKER_REPLY_TOPICS);
    for (const t of ['replies-1', 'exact.topic', 'a.b.reply'])
      expect(policy.refusal(t, 'pattern.usage')).toBeUndefined();
    for (const t of ['exact.topicX', 'pattern.replies', 'xreplies-1'])
      expect(policy.refusal(t, 'pattern.usage')).toBeDefined();
    const everything = new ReplyPolicy(new TopicNames(''), ['*']);
    expect(everything.refusal('pattern.usage.result', 'pattern.insert')).toBeDefined();
    expect(everything.refusal('anything', 'pattern.insert')).toBeUndefined();
    expect(everything.refusal('other.pattern.insert', 'pattern.insert')).toMatch(/prefix "other\."/);
    expect(() => loadConfig({ WORKER_REPLY_TOPICS: 'a b' })).toThrow(/WORKER_REPLY_TOPICS/);
    expect(() => loadConfig({ WORKER_REPLY_TOPICS: ',' })).toThrow(/WORKER_REPLY_TOPICS/);
    expect(loadConfig({}).WORKER_REPLY_TOPICS).toBeUndefined();
    expect(loadConfig({}).WORKER_MAX_KEY_BYTES).toBe(256);
    expect(() => loadConfig({ WORKER_MAX_KEY_BYTES: '10' })).toThrow(/WORKER_MAX_KEY_BYTES/);
  });
});

describe('a refused reply target', () => {
  it('is not applied, is answered on the default result topic naming kafka_replyTopic, and is dead-lettered', () => {
    const names = new TopicNames('');
    const message: InboundMessage = {
      topic: 'pattern.insert',
      partition: 0,
      offset: '3',
      key: Buffer.from('k'),
      value: Buffer.from(
        JSON.stringify({ data: { pattern_name: 'P', pattern_type: 'code', language: 'go' } }),
      ),
      headers: Object.assign(Object.create(null) as InboundMessage['headers'], {
        [HEADERS.replyTopic]: Buffer.from('other.tenant.results'),
        [HEADERS.replyPartition]: Buffer.from('0'),
      }),
      timestamp: '0',
    };
    const p = prepareMessage(message, { names, maxMessageBytes: 1 << 20 });
    expect(p.request).toBeUndefined();
    expect(p.error).toMatchObject({
      code: 'VALIDATION_ERROR',
      message: expect.stringContaining('kafka_replyTopic') as unknown,
    });
    expect(p.reply).toEqual({ topic: 'pattern.insert.result' });
    const out = unitOutput(
      [p],
      [errorResult(p, p.error!)],
      {
        names,
        consumerGroupOf: () => 'g',
        maxResultBytes: 900_000,
        publishResults: true,
      },
      () => undefined,
    );
    expect(out.records.map((r) => [r.topic, r.partition])).toEqual([
      ['pattern.insert.result', undefined],
      ['pattern.insert.dlq', undefined],
    ]);
    expect(out.outcomes[0]?.deadLettered).toBe(true);
  });
});
