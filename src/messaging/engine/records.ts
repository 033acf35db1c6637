// The engine's own view of what comes in and what goes out: only src/messaging/kafka/ sees the Kafka
// client's types (an eslint rule says so).
import type { MessageHeaders } from '../../contracts/headers.ts';

export interface InboundMessage {
  topic: string;
  partition: number;
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
  headers: MessageHeaders;
  timestamp: string;
  /** The record batch this stands for could not be read (too large decompressed, or malformed): the
   * message is its last offset, without key, value or headers, and is refused with this. */
  unreadable?: { tooLarge: boolean; message: string; details: Record<string, unknown> } | undefined;
}

export type OutboundHeaders = Record<string, Buffer | string | (Buffer | string)[]>;

/** A record to publish: a result, a reply or a dead letter. */
export interface OutboundRecord {
  topic: string;
  partition?: number | undefined;
  key: Buffer | string | null;
  value: Buffer | string | null;
  headers: OutboundHeaders;
  /**
   * What to publish instead when this record cannot be sent: it fails the check made before it is queued,
   * or the broker refuses it for good (too large for the topic, not authorised). Results answer with an
   * error on the default result topic and a dead letter; a record without it is logged and dropped.
   */
  ifRefused?: ((reason: string) => OutboundRecord[]) | undefined;
}

/** The key of one partition of one topic in maps and sets. */
export const partitionKey = (topic: string, partition: number): string => `${topic}:${partition}`;
