// Fetched Kafka messages to the engine's InboundMessage.
import type { InboundMessage } from '../engine/records.ts';
import { emptyHeaders, type HeaderValue, type MessageHeaders } from '../../contracts/headers.ts';

/** The fields of a fetched kafkajs message the engine reads. */
export interface FetchedMessage {
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
  /** As kafkajs decodes them: a plain object, see readHeaders. */
  headers?: Record<string, unknown> | undefined;
  timestamp: string;
}

/**
 * The headers kafkajs decoded, as bytes in a map without a prototype. kafkajs builds a plain object with
 * `obj[key] === undefined ? value : [obj[key], value]`, so a header named after an Object.prototype member
 * (`constructor`, `toString`, `__proto__`) arrives as `[inherited member, value, ...]`. A header's values
 * from the wire are only ever Buffers or null (no value), so anything else is that artefact and is
 * dropped; a header sent once is a single value again, one sent several times an array in order.
 */
export function readHeaders(raw: Record<string, unknown> | undefined): MessageHeaders {
  const headers = emptyHeaders<HeaderValue>();
  if (raw === undefined || raw === null) return headers;
  for (const name of Object.keys(raw)) {
    const value: unknown = raw[name];
    const values = (Array.isArray(value) ? value : [value]).filter(
      (v: unknown): v is Buffer | string | null => v === null || Buffer.isBuffer(v) || typeof v === 'string',
    );
    if (values.length === 0) continue;
    headers[name] = values.length === 1 ? values[0] : values;
  }
  return headers;
}

export function toInbound(topic: string, partition: number, message: FetchedMessage): InboundMessage {
  return {
    topic,
    partition,
    offset: message.offset,
    key: message.key ?? null,
    value: message.value ?? null,
    headers: readHeaders(message.headers),
    timestamp: message.timestamp,
  };
}
