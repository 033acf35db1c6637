// One unit through the stages after "prepare": reply-path check, dispatch to the effect node, then the
// outcome records. The engine (lane-engine.ts) decides when a unit runs; this decides what it does.
import type { PatternRequest } from '../../contracts/requests.ts';
import type { TopicNames } from '../../contracts/topics.ts';
import type { Logger } from '../../telemetry/logger.ts';
import { dispatchOne, dispatchBatch, errorResult, type Nodes } from './dispatch.ts';
import type { Failure } from '../engine/failures.ts';
import type { InboundMessage } from '../engine/records.ts';
import type { Lifecycle, UnitView } from '../engine/lifecycle.ts';
import { gaveUpResults, unitOutput, type OutcomeOptions } from './outcomes.ts';
import type { UnitOutput, UnitWork } from '../engine/ports.ts';
import {
  checkRedriveOriginal,
  checkReplyTarget,
  pastDeadline,
  prepareMessage,
  unpreparable,
  type Prepared,
  type PrepareOptions,
} from './prepare.ts';
import {
  DEFAULT_MAX_KEY_BYTES,
  DEFAULT_RECORD_LIMITS,
  recordLimits,
  type RecordLimits,
} from './record-check.ts';
import { ReplyPolicy } from './reply-policy.ts';
import type { TopicDirectory } from '../kafka/topic-directory.ts';
import type { CommittedOffsets } from '../kafka/committed-offsets.ts';

export interface PipelineOptions {
  names: TopicNames;
  nodes: Nodes;
  /** Which reply topics exist. Absent in a replay: whether the live worker refused a request for its
   * reply topic is in the live outcomes, and the cluster's topics today are not what they were then (a
   * write applied live must not be refused because its reply topic has since been deleted). */
  directory?: TopicDirectory | undefined;
  /** Which offsets the groups committed, for a redrive's original (prepare.ts checkRedriveOriginal).
   * Absent in a replay: a redrive refused live is refused again from the live outcomes. */
  committedOffsets?: CommittedOffsets | undefined;
  /** The consumer group that reads a topic (each lane has its own), named in dead letters. */
  consumerGroupOf: (topic: string) => string;
  maxMessageBytes: number;
  maxResultBytes: number;
  /** WORKER_MAX_KEY_BYTES (default DEFAULT_MAX_KEY_BYTES). */
  maxKeyBytes?: number | undefined;
  /** WORKER_REPLY_TOPICS, split at commas (default: ReplyPolicy's). */
  replyTopics?: readonly string[] | undefined;
  publishResults: boolean;
  logger: Logger;
  lifecycle: Lifecycle;
  select?: ((request: PatternRequest | undefined) => boolean) | undefined;
}

function deadlineResult(p: Prepared, now: number) {
  const deadline = p.deadline as number;
  return errorResult(p, {
    code: 'DEADLINE_EXCEEDED',
    message: `the caller's deadline passed ${now - deadline} ms before the request's turn came; it was not run`,
    details: { deadline_ms: deadline, late_by_ms: now - deadline },
  });
}

export class UnitPipeline implements UnitWork<Prepared> {
  readonly #o: PipelineOptions;
  readonly #outcome: OutcomeOptions;
  readonly #prepare: PrepareOptions;

  constructor(options: PipelineOptions) {
    this.#o = options;
    const limits = recordLimits({
      maxKeyBytes: options.maxKeyBytes ?? DEFAULT_MAX_KEY_BYTES,
      maxResultBytes: options.maxResultBytes,
    });
    this.#outcome = {
      names: options.names,
      consumerGroupOf: options.consumerGroupOf,
      maxResultBytes: options.maxResultBytes,
      publishResults: options.publishResults,
      limits,
    };
    this.#prepare = {
      names: options.names,
      maxMessageBytes: options.maxMessageBytes,
      maxKeyBytes: limits.maxKeyBytes,
      replyPolicy: new ReplyPolicy(options.names, options.replyTopics),
      select: options.select,
    };
  }

  /** The limits every record of this pipeline is built within: what the publisher checks them against. */
  get recordLimits(): RecordLimits {
    return this.#outcome.limits ?? DEFAULT_RECORD_LIMITS;
  }

  prepare(message: InboundMessage): Prepared {
    try {
      return prepareMessage(message, this.#prepare);
    } catch (err) {
      // Never expected (prepareMessage does not throw). The message itself is kept whole, so that after
      // its bounded tries its dead letter still carries the original key, value and headers.
      return unpreparable(message, this.#prepare, err);
    }
  }

  async run(unit: UnitView, items: readonly Prepared[]): Promise<UnitOutput> {
    const { names, directory, committedOffsets, consumerGroupOf, logger, nodes } = this.#o;
    const failed = items.find((p) => p.prepareFailure !== undefined);
    if (failed) throw failed.prepareFailure;
    const replyChecked = directory
      ? await Promise.all(items.map((p) => checkReplyTarget(p, names, directory, logger)))
      : items;
    const prepared =
      committedOffsets && replyChecked.some((p) => p.redriveOf)
        ? await Promise.all(
            replyChecked.map((p) => checkRedriveOriginal(p, committedOffsets, consumerGroupOf)),
          )
        : replyChecked;
    const now = Date.now();
    const results = unit.batched
      ? await dispatchBatch(nodes, prepared)
      : await Promise.all(
          prepared.map((p) =>
            pastDeadline(p, now) ? Promise.resolve(deadlineResult(p, now)) : dispatchOne(nodes, p),
          ),
        );
    return this.#output(unit, prepared, results);
  }

  giveUp(unit: UnitView, items: readonly Prepared[], failure: Failure & { kind: 'permanent' }): UnitOutput {
    const gaveUp = { attempts: unit.attempt, errorClass: failure.errorClass };
    return this.#output(unit, items, gaveUpResults(items, gaveUp), gaveUp);
  }

  #output(
    unit: UnitView,
    prepared: readonly Prepared[],
    results: Parameters<typeof unitOutput>[1],
    gaveUp?: Parameters<typeof unitOutput>[4],
  ): UnitOutput {
    const { lifecycle } = this.#o;
    const output = unitOutput(
      prepared,
      results,
      this.#outcome,
      (index, topic, partition) => {
        const headers: { traceparent?: string } = {};
        lifecycle.emit('result.encoding', { unit, index, topic, partition, headers });
        return headers.traceparent;
      },
      gaveUp,
    );
    output.outcomes.forEach((outcome, index) => lifecycle.emit('message.outcome', { unit, index, outcome }));
    return output;
  }
}
