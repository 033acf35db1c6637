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
  /** The headers as the record had them, in order (names as bytes; a value may be null): what a dead
   * letter and a redrive carry, so that the order and headers without a value survive. Absent: `headers`. */
  wireHeaders?: readonly WireHeader[] | undefined;
  timestamp: string;
  /** When the worker took it from its fetch (ms since the epoch): a reply topic created before the request
   * was sent exists in any listing of topics begun after this. Absent: when it is asked about. */
  receivedAt?: number | undefined;
  /** Refused as it came off the wire, with this: its record batch could not be read (too large
   * decompressed, or malformed; the message is then the batch's last offset, without key, value or
   * headers), or the batch gave it an offset it cannot hold. */
  unreadable?: { tooLarge: boolean; message: string; details: Record<string, unknown> } | undefined;
}

/** One header as a fetched record holds it. */
export type WireHeader = readonly [name: Buffer | null, value: Buffer | null];

/** One header to publish: a name and a value; null is a header without a value. */
export type HeaderEntry = readonly [name: string, value: Buffer | string | null];

/** A map (a repeated header holds its values in order), or the headers in the order they go on the wire
 * (dead letters and redrives, which carry another record's headers exactly). */
export type OutboundHeaders = Record<string, Buffer | string | (Buffer | string)[]> | readonly HeaderEntry[];

/** A record's headers as [name, value] pairs in wire order, whichever form they take; values as they are,
 * for the checks to judge (a map's array value is one pair per element). */
export function headerEntries(headers: unknown): [name: unknown, value: unknown][] {
  if (Array.isArray(headers)) {
    return headers.map((e: unknown): [unknown, unknown] =>
      Array.isArray(e) && e.length === 2 ? [e[0], e[1]] : [undefined, e],
    );
  }
  if (typeof headers !== 'object' || headers === null) return [];
  const entries: [unknown, unknown][] = [];
  for (const name of Object.keys(headers)) {
    const value: unknown = (headers as Record<string, unknown>)[name];
    if (Array.isArray(value)) for (const v of value as unknown[]) entries.push([name, v]);
    else entries.push([name, value]);
  }
  return entries;
}

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
  /** The topic was named by the request (kafka_replyTopic), not by the worker: if the broker does not know
   * it at send time (deleted after it was checked), the record is refused rather than retried for ever. */
  requestedTopic?: boolean | undefined;
  /** The request this record answers or dead-letters (a replay holds back those of a message it defers). */
  answers?: InboundMessage | undefined;
}

/** The key of one partition of one topic in maps and sets. */
export const partitionKey = (topic: string, partition: number): string => `${topic}:${partition}`;

/** The heap a header takes as read, beside its bytes: its name and value slices and its map entries
 * (about 300 bytes, measured). A record of 45,000 empty headers is 135 KB on the wire (41 KB with lz4)
 * and about 13 MB read. */
export const HEAP_BYTES_PER_HEADER = 300;

/** How many headers a message has. */
export function headerCount(message: InboundMessage): number {
  if (message.wireHeaders) return message.wireHeaders.length;
  let count = 0;
  for (const value of Object.values(message.headers))
    count += Array.isArray(value) ? value.length : value === undefined ? 0 : 1;
  return count;
}

function headersBytes(message: InboundMessage): number {
  let bytes = 0;
  if (message.wireHeaders) {
    for (const [name, value] of message.wireHeaders) bytes += (name?.length ?? 0) + (value?.length ?? 0);
  } else {
    for (const [name, value] of Object.entries(message.headers)) {
      for (const v of Array.isArray(value) ? value : [value]) bytes += name.length + (v?.length ?? 0);
    }
  }
  return bytes + headerCount(message) * HEAP_BYTES_PER_HEADER;
}

/** A message as buffered: its key, value and headers, with something for the rest of it (bytes). Headers
 * count: uncounted, sixty requests of many empty headers, 41 KB on the broker, ran the worker's 128 MB
 * heap out on every start. */
export function messageBytes(message: InboundMessage): number {
  return (message.value?.length ?? 0) + (message.key?.length ?? 0) + 64 + headersBytes(message);
}
