// One lane's settings, built once (app.ts) and passed whole to the consumer and the engine.
import type { BackoffPolicy } from './backoff.ts';
import type { PartitionOffset } from './ports.ts';

export interface LaneSettings {
  name: string;
  /** The lane's own consumer group. */
  groupId: string;
  /** A group whose committed offsets of this lane's topics are copied to `groupId` once, before it has
   * any (an upgrade from the single group all lanes shared). */
  migrateOffsetsFrom?: string | undefined;
  /** Topics (prefixed names) whose partitions this lane is assigned. */
  topics: string[];
  /** Units running at once. */
  concurrency: number;
  /** Units running at once while another lane of this worker has work (the writes lane while searches run
   * or wait: on a small host, concurrent write transactions take the database from the searches). */
  yieldTo?: { lane: string; concurrency: number } | undefined;
  /** Messages started per second at most (a replay's budget); 0: no limit. */
  maxRatePerSecond: number;
  /** Tries of a message that fails with an error that is not transient. */
  maxAttempts: number;
  /** ... of one whose statement ran past the statement timeout, if fewer (read lanes). */
  maxTimeoutAttempts?: number | undefined;
  backoff: BackoffPolicy;
  /** Most usage events in one transaction, and most bytes of their request values. */
  maxBatch: number;
  maxBatchBytes: number;
  /** A partition's fetching pauses above this many unfinished messages, and resumes below half. */
  maxBufferedMessages: number;
  /** ... or above this many messages taken in above its commit point (finished or not): a message that
   * keeps failing holds the commit point, and what finishes behind it must not pile up without bound. */
  maxUncommittedMessages: number;
  /** Least time between two offset commits of the lane (ms); 0: a commit as each unit finishes. */
  commitIntervalMs: number;
  /** The lane's fetching pauses above this many buffered request bytes. */
  maxBufferedBytes: number;
  /** New units wait while this many bytes of records are handed to the broker and not acknowledged. */
  maxPendingPublishBytes: number;
  /** Kafka consumer settings. */
  maxBytesPerPartition: number;
  /** The most bytes a fetched record batch may decompress to; a larger one is refused unread. */
  maxDecompressedBatchBytes: number;
  fromBeginning: boolean;
  /** Replay: where each partition starts (applied on the first fetch; the group must be new). */
  startOffsets: PartitionOffset[];
  /** Replay: the exclusive end offset of a partition; fetching it stops there. */
  endOffset?: ((topic: string, partition: number) => bigint | undefined) | undefined;
}
