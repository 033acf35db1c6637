// A known workload for the fault-injection tests and the checker that compares the database and the
// result topics with what the workload implies: every effect exactly once, every request answered.
import { randomUUID } from 'node:crypto';
import type { Producer } from 'kafkajs';
import type { ModelResult } from '../../src/contracts/results.ts';
import type { RequestTopic, TopicNames } from '../../src/contracts/topics.ts';
import type { Pool } from '../../src/db/pool.ts';
import type { CollectedMessage, Collector } from './kafka.ts';

export interface WorkloadRequest {
  topic: RequestTopic;
  key: string;
  cid: string;
  write: boolean;
  body: Record<string, unknown>;
}

export interface WorkloadOptions {
  patterns: number;
  usagePerPattern: number;
  /** Relationships between neighbouring patterns (at most patterns - 1). */
  relationships: number;
  searches: number;
}

interface ExpectedStats {
  usage: number;
  success: number;
  executionSum: number;
}

export interface Figures {
  messages: number;
  writes: number;
  answered: number;
  /** Requests with no result, plus effects missing from the database. */
  lost: number;
  /** Effects applied more than once, plus writes answered twice without `metadata.duplicate`. */
  doubled: number;
  /** Extra results flagged `metadata.duplicate` (at-least-once results, allowed). */
  duplicateResults: number;
  /** Byte-identical extra copies of a result record (the producer sent it twice; allowed). */
  resentResults: number;
  failedResults: number;
  deadLetters: number;
  problems: string[];
}

/** Inserts with explicit ids first; usage, relationships and searches once the inserts are applied. */
export class Workload {
  readonly inserts: WorkloadRequest[] = [];
  readonly followUps: WorkloadRequest[] = [];
  readonly patternIds: string[] = [];
  readonly #expected = new Map<string, ExpectedStats>();
  readonly #relationships: number;

  constructor(options: WorkloadOptions) {
    const tag = randomUUID().slice(0, 8);
    for (let i = 0; i < options.patterns; i++) {
      const id = randomUUID();
      this.patternIds.push(id);
      this.#expected.set(id, { usage: 0, success: 0, executionSum: 0 });
      this.inserts.push(
        request('pattern.insert', id, true, {
          operation: 'insert',
          data: {
            pattern_id: id,
            pattern_name: `ReliabilityPattern${tag}N${i}`,
            pattern_type: 'code',
            language: i % 2 === 0 ? 'python' : 'typescript',
            confidence_score: 0.5 + (i % 5) / 10,
            tags: ['reliability'],
          },
        }),
      );
    }
    // Interleave by round so every partition carries a mix of operations.
    this.#relationships = Math.min(options.relationships, options.patterns - 1);
    for (let round = 0; round < options.usagePerPattern; round++) {
      this.patternIds.forEach((id, i) => {
        const success = (round + i) % 3 !== 0;
        const executionTime = 5 + ((round * 7 + i) % 50);
        const stats = this.#expected.get(id) as ExpectedStats;
        stats.usage += 1;
        stats.success += success ? 1 : 0;
        stats.executionSum += executionTime;
        this.followUps.push(
          request('pattern.usage', id, true, {
            operation: 'record_usage',
            pattern_id: id,
            usage_data: {
              success,
              execution_time_ms: executionTime,
              quality_before: 0.5,
              quality_after: success ? 0.7 : 0.4,
            },
          }),
        );
        if (round === 0 && i < this.#relationships) {
          this.followUps.push(
            request('pattern.usage', id, true, {
              operation: 'create_relationship',
              relationship_data: {
                source_pattern_id: id,
                target_pattern_id: this.patternIds[i + 1],
                relationship_type: 'similar',
                strength: 0.5,
              },
            }),
          );
        }
      });
    }
    // Searches spread evenly through the follow-ups.
    const step = Math.max(1, Math.floor(this.followUps.length / Math.max(1, options.searches)));
    for (let s = options.searches - 1; s >= 0; s--) {
      const id = this.patternIds[s % this.patternIds.length] as string;
      const body =
        s % 2 === 0
          ? { operation: 'get_by_id', pattern_id: id }
          : { operation: 'search', search_query: `reliability pattern ${s}`, limit: 5 };
      this.followUps.splice(Math.min(s * step, this.followUps.length), 0, {
        ...request('pattern.search.request', id, false, body),
      });
    }
  }

  get all(): WorkloadRequest[] {
    return [...this.inserts, ...this.followUps];
  }

  get size(): number {
    return this.inserts.length + this.followUps.length;
  }

  /** Compares database and result topics with the workload. */
  async check(pool: Pool, tracker: ResultTracker, names: TopicNames): Promise<Figures> {
    const problems: string[] = [];
    let lost = 0;
    let doubled = 0;
    let duplicateResults = 0;
    let resentResults = 0;
    let failedResults = 0;
    let answered = 0;
    tracker.update();
    for (const r of this.all) {
      const results = tracker.byCid.get(r.cid) ?? [];
      if (results.length === 0) {
        lost++;
        if (problems.length < 20) problems.push(`no result for ${r.body.operation as string} ${r.cid}`);
        continue;
      }
      answered++;
      const firsts = results.filter((m) => m.result.metadata.duplicate !== true);
      duplicateResults += results.length - firsts.length;
      // A byte-identical copy is the same record sent twice (a producer retry across a broker restart):
      // at-least-once delivery of one result. Two different original results would be two applications.
      const distinct = new Set(firsts.map((m) => JSON.stringify(m.result))).size;
      resentResults += firsts.length - distinct;
      if (r.write && distinct > 1) {
        doubled += distinct - 1;
        problems.push(`${r.cid} answered ${distinct} different times without metadata.duplicate`);
      }
      const wrongTopic = results.find((m) => m.topic !== names.result(r.topic));
      if (wrongTopic) problems.push(`${r.cid} answered on ${wrongTopic.topic}`);
      const failed = results.find((m) => !m.result.success);
      if (failed) {
        failedResults++;
        if (problems.length < 20) problems.push(`${r.cid} failed: ${JSON.stringify(failed.result.error)}`);
      }
    }

    const { rows } = await pool.query<{
      id: string;
      usage_count: number;
      success_count: number;
      events: number;
      execution_sum: number | null;
    }>(
      `SELECT p.id, p.usage_count, p.success_count,
              (SELECT count(*) FROM pattern_usage_events e WHERE e.pattern_id = p.id) AS events,
              (SELECT sum(execution_time_ms) FROM pattern_usage_events e WHERE e.pattern_id = p.id) AS execution_sum
         FROM pattern_templates p WHERE p.id = ANY($1::uuid[])`,
      [this.patternIds],
    );
    const found = new Map(rows.map((row) => [row.id, row]));
    for (const [id, want] of this.#expected) {
      const got = found.get(id);
      if (!got) {
        lost++;
        problems.push(`pattern ${id} missing`);
        continue;
      }
      for (const [have, expected, what] of [
        [got.usage_count, want.usage, 'usage_count'],
        [got.success_count, want.success, 'success_count'],
        [got.events, want.usage, 'usage events'],
        [got.execution_sum ?? 0, want.executionSum, 'execution time sum'],
      ] as const) {
        if (have > expected) doubled += what === 'execution time sum' ? 0 : have - expected;
        if (have < expected) lost += what === 'execution time sum' ? 0 : expected - have;
        if (have !== expected && problems.length < 20)
          problems.push(`pattern ${id}: ${what} ${have}, expected ${expected}`);
      }
    }
    const totals = await pool.query<{ patterns: number; relationships: number; identities: number }>(
      `SELECT (SELECT count(*) FROM pattern_templates) AS patterns,
              (SELECT count(*) FROM pattern_relationships) AS relationships,
              (SELECT count(*) FROM processed_messages) AS identities`,
    );
    const t = totals.rows[0] as { patterns: number; relationships: number; identities: number };
    const writes = this.all.filter((r) => r.write).length;
    const compare = (have: number, want: number, what: string) => {
      if (have > want) doubled += have - want;
      if (have < want) lost += want - have;
      if (have !== want) problems.push(`${what}: ${have}, expected ${want}`);
    };
    compare(t.patterns, this.patternIds.length, 'patterns');
    compare(t.relationships, this.#relationships, 'relationships');
    compare(t.identities, writes, 'processed_messages');

    const deadLetters = (['pattern.insert', 'pattern.usage', 'pattern.search.request'] as const).reduce(
      (n, topic) => n + tracker.collector.on(names.dlq(topic)).length,
      0,
    );
    if (deadLetters > 0) problems.push(`${deadLetters} dead letters`);
    return {
      messages: this.size,
      writes,
      answered,
      lost,
      doubled,
      duplicateResults,
      resentResults,
      failedResults,
      deadLetters,
      problems,
    };
  }
}

function request(
  topic: RequestTopic,
  key: string,
  write: boolean,
  body: Record<string, unknown>,
): WorkloadRequest {
  const cid = randomUUID();
  return { topic, key, cid, write, body: { ...body, correlation_id: cid } };
}

/** Sends requests in chunks, keyed by pattern id, with an optional pause between chunks. */
export async function produce(
  producer: Producer,
  names: TopicNames,
  requests: WorkloadRequest[],
  options: { chunk?: number; pauseMs?: number } = {},
): Promise<void> {
  const chunk = options.chunk ?? 200;
  for (let i = 0; i < requests.length; i += chunk) {
    const slice = requests.slice(i, i + chunk);
    const byTopic = new Map<string, { key: string; value: string }[]>();
    for (const r of slice) {
      const topic = names.request(r.topic);
      const list = byTopic.get(topic) ?? [];
      list.push({ key: r.key, value: JSON.stringify(r.body) });
      byTopic.set(topic, list);
    }
    await producer.sendBatch({
      acks: -1,
      topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })),
    });
    if (options.pauseMs) await new Promise((r) => setTimeout(r, options.pauseMs));
  }
}

export interface TrackedResult {
  topic: string;
  result: ModelResult<unknown>;
}

/** Indexes a collector's results by body correlation id, incrementally (thousands of messages). */
export class ResultTracker {
  readonly byCid = new Map<string, TrackedResult[]>();
  readonly collector: Collector;
  #seen = 0;

  constructor(collector: Collector) {
    this.collector = collector;
  }

  update(): void {
    const all = this.collector.messages;
    for (; this.#seen < all.length; this.#seen++) {
      const m = all[this.#seen] as CollectedMessage;
      if (m.topic.endsWith('.dlq')) continue;
      const result = m.json<ModelResult<unknown>>();
      const cid = result.metadata?.correlation_id;
      if (!cid) continue;
      const list = this.byCid.get(cid) ?? [];
      list.push({ topic: m.topic, result });
      this.byCid.set(cid, list);
    }
  }

  missing(requests: WorkloadRequest[]): WorkloadRequest[] {
    this.update();
    return requests.filter((r) => !this.byCid.has(r.cid));
  }

  /** Waits until every request has at least one result. */
  async waitAnswered(requests: WorkloadRequest[], timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const missing = this.missing(requests);
      if (missing.length === 0) return;
      if (Date.now() > deadline) {
        throw new Error(`${missing.length} of ${requests.length} requests unanswered after ${timeoutMs} ms`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** Writes a scenario's figures where CI keeps test output, and prints them. */
export async function reportFigures(scenario: string, figures: Record<string, unknown>): Promise<void> {
  const { mkdir, writeFile } = await import('node:fs/promises');
  const dir = new URL('../../test-results/reliability/', import.meta.url);
  await mkdir(dir, { recursive: true });
  await writeFile(new URL(`${scenario}.json`, dir), `${JSON.stringify(figures, null, 2)}\n`);
  console.log(`[reliability] ${scenario}: ${JSON.stringify(figures)}`);
}
