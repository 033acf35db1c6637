// What the engine asks of the world, in one place: of its Kafka consumer (flow control, seeks, commits),
// of the broker's producer (sending records), and of the stages (preparing, running and giving up on
// units). The Kafka side (src/messaging/kafka/) and the stages implement these; the in-process engine
// tests give fakes.
import type { Failure } from './failures.ts';
import type { MessageOutcome, UnitView } from './lifecycle.ts';
import type { InboundMessage, OutboundRecord } from './records.ts';

export interface PartitionOffset {
  topic: string;
  partition: number;
  offset: string;
}

/** Where one partition of a lane stands (LaneEngine.partitionWaits). */
export interface PartitionWait {
  topic: string;
  partition: number;
  /** Every message below it has its effect and its result done. */
  done: bigint;
  unfinished: number;
  /** How long the oldest unfinished message has held `done` (ms; 0: none unfinished). */
  waitingMs: number;
}

/** The engine's hold on its consumer. */
export interface ConsumerControl {
  pause(topic: string, partition: number): void;
  resume(topic: string, partition: number): void;
  /** The partition's next fetch starts at `offset` (a partition no longer assigned ignores it). */
  seek(topic: string, partition: number, offset: bigint): void;
  commit(offsets: PartitionOffset[]): Promise<void>;
}

/** A send the broker answered with an error; `refused`: these records will never be accepted as they are. */
export class SendError extends Error {
  override name = 'SendError';
  readonly refused: boolean;
  /** A topic of the send the broker does not know (a transient failure unless the topic was requested). */
  readonly unknownTopic: string | undefined;

  constructor(message: string, refused: boolean, options?: { cause?: unknown; unknownTopic?: string }) {
    super(message, options);
    this.refused = refused;
    this.unknownTopic = options?.unknownTopic;
  }
}

/** Sends records to the broker in the order given; rejects with a SendError. */
export interface RecordSender {
  send(records: readonly OutboundRecord[]): Promise<void>;
}

/** Publishes records in the order they are handed over; resolves once the broker has acknowledged them. */
export interface RecordSink {
  publish(records: OutboundRecord[]): Promise<void>;
  /** Bytes handed over and not acknowledged yet (the engine holds back new units above its bound). */
  readonly pendingBytes: number;
}

/** Why a record cannot be sent, checked before it is queued; undefined when it can. */
export type RecordCheck = (record: OutboundRecord) => string | undefined;

/** What the scheduler reads of a prepared message. */
export interface Schedulable {
  message: InboundMessage;
  ordering: 'free' | 'key';
  key: string;
  /** What a write touches besides its message key (the patterns, by replay-order.ts's rule): a write waits
   * for the earlier writes of its message key and of each of these. */
  touches?: readonly string[] | undefined;
  /** Consecutive ready messages with one batch class may share a unit and a transaction (batchClassOf). */
  batchWith?: string | undefined;
  skip: boolean;
  correlationId: string | null;
  request?: { operation: string } | undefined;
  /** What it holds in memory while buffered (bytes, an estimate); default: its key and value. */
  memoryBytes?: number | undefined;
}

export interface UnitOutput {
  records: OutboundRecord[];
  outcomes: MessageOutcome[];
}

/** What the engine needs of the stages. */
export interface UnitWork<P extends Schedulable = Schedulable> {
  prepare(message: InboundMessage): P;
  /** Applies the unit and returns what to publish. Throws when the try failed. */
  run(unit: UnitView, items: readonly P[]): Promise<UnitOutput>;
  /** What to publish for messages given up on after `attempts` tries. */
  giveUp(unit: UnitView, items: readonly P[], failure: Failure & { kind: 'permanent' }): UnitOutput;
}
