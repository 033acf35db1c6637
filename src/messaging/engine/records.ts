// The engine's own view of what comes in and what goes out, so that only the Kafka-facing modules
// (lane-consumer.ts, publisher.ts, lane-assignor.ts, kafka.ts, and the tools' operator-io.ts) see kafkajs
// types.
import type { MessageHeaders } from '../../contracts/headers.ts';

export interface InboundMessage {
  topic: string;
  partition: number;
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
  headers: MessageHeaders;
  timestamp: string;
}

export type OutboundHeaders = Record<string, Buffer | string | (Buffer | string)[]>;

/** A record to publish: a result, a reply or a dead letter. */
export interface OutboundRecord {
  topic: string;
  partition?: number | undefined;
  key: Buffer | string | null;
  value: Buffer | string | null;
  headers: OutboundHeaders;
}

/** The fields of a fetched kafkajs message the engine reads. */
export interface FetchedMessage {
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
  headers?: MessageHeaders | undefined;
  timestamp: string;
}

export function toInbound(topic: string, partition: number, message: FetchedMessage): InboundMessage {
  return {
    topic,
    partition,
    offset: message.offset,
    key: message.key ?? null,
    value: message.value ?? null,
    headers: message.headers ?? {},
    timestamp: message.timestamp,
  };
}
