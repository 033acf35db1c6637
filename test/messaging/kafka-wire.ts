// The client library's own record encoder and decoder (@platformatic/kafka), for round trips in-process:
// a record with header bytes chosen freely (nulls and repeated names included) as the fetcher hands it
// over, and an outbound record through the wire and back.
import { createRecord, readRecord, Reader } from '@platformatic/kafka';
import type { OutboundRecord } from '../../src/messaging/engine/records.ts';
import type { FetchedRecord } from '../../src/messaging/kafka/fetcher.ts';
import { producerMessage } from '../../src/messaging/kafka/record-sender.ts';

type WireHeader = [Buffer | string | null, Buffer | null];

const bytes = (v: Buffer | string | null): Buffer | null =>
  v === null ? null : Buffer.isBuffer(v) ? v : Buffer.from(v, 'utf8');

/** A record with these raw headers (null: a header without a value), encoded and decoded by the library. */
export function fetchedRecord(
  key: Buffer | null,
  value: Buffer | null,
  headers: readonly WireHeader[],
  at: { topic?: string; partition?: number; offset?: bigint; timestamp?: bigint } = {},
): FetchedRecord {
  const timestamp = at.timestamp ?? 0n;
  // A Map of distinct Buffer objects: repeated names stay separate entries, in order. The library's
  // types say Buffer; its writer encodes null as a missing key or value (length -1).
  const map = new Map(headers.map(([k, v]) => [bytes(k), v] as [Buffer, Buffer]));
  const writer = createRecord(
    { topic: at.topic ?? 't', key: key as Buffer, value: value as Buffer, headers: map, timestamp },
    0,
    timestamp,
  );
  // Read from one flat buffer, as from a response: the writer's own buffer is a chunk per field, and
  // reading across that many chunks is quadratic.
  const record = readRecord(Reader.from(writer.buffer));
  return {
    topic: at.topic ?? 't',
    partition: at.partition ?? 0,
    offset: at.offset ?? 0n,
    timestamp: timestamp + record.timestampDelta,
    key: record.key,
    value: record.value,
    headers: record.headers,
  };
}

/** The record through the worker's own conversion (producerMessage: names, repeats, headers without a
 * value), the library's encoder, and back through its decoder. */
export function roundTrip(record: OutboundRecord): FetchedRecord {
  const message = producerMessage(record.topic, record);
  const headers = [...(message.headers as Map<Buffer, Buffer | null>)];
  return fetchedRecord(message.key ?? null, message.value ?? null, headers);
}
