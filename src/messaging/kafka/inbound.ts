// Fetched Kafka messages to the engine's InboundMessage.
import type { InboundMessage } from '../engine/records.ts';
import type { MessageHeaders } from '../../contracts/headers.ts';

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
