// A fetched record to the engine's InboundMessage: offsets and timestamps as decimal strings, headers into
// a MessageHeaders map in one pass.
import type { InboundMessage } from '../engine/records.ts';
import { emptyHeaders, type HeaderValue, type MessageHeaders } from '../../contracts/headers.ts';
import type { FetchedRecord } from './fetcher.ts';

/**
 * A record's headers as the wire has them (in order) to a map without a prototype, so any name
 * (`constructor`, `__proto__`) is an ordinary key. A name sent several times holds its values in order, a
 * header without a value holds null. Keys are decoded as UTF-8; a null key (no broker accepts one) reads
 * as ''. Linear in the number of headers (a 1 MiB record can hold 100,000).
 */
export function headerMap(wire: readonly (readonly [Buffer | null, Buffer | null])[]): MessageHeaders {
  const headers = emptyHeaders<HeaderValue>();
  for (const [rawKey, value] of wire) {
    const key = rawKey === null ? '' : rawKey.toString('utf8');
    const prev = headers[key];
    if (prev === undefined) headers[key] = value;
    else if (Array.isArray(prev)) prev.push(value);
    else headers[key] = [prev, value];
  }
  return headers;
}

export function toInbound(record: FetchedRecord, receivedAt?: number): InboundMessage {
  const message: InboundMessage = {
    topic: record.topic,
    partition: record.partition,
    offset: record.offset.toString(),
    key: record.key,
    value: record.value,
    headers: headerMap(record.headers),
    wireHeaders: record.headers,
    timestamp: record.timestamp.toString(),
    receivedAt,
  };
  const forged = record.forged;
  if (forged) {
    message.unreadable = {
      tooLarge: false,
      message:
        `the record at offset ${record.offset} of ${record.topic}/${record.partition} came in a record batch ` +
        `(offsets ${forged.firstOffset}-${forged.lastOffset}) that gives it offset delta ${forged.offsetDelta}, ` +
        'out of order in its batch or past its end: its producer wrote a malformed batch, so it was ' +
        'not applied; it is read at the next free offset of its batch',
      details: {
        offset_delta: forged.offsetDelta,
        batch_first_offset: forged.firstOffset.toString(),
        batch_last_offset: forged.lastOffset.toString(),
      },
    };
  }
  const batch = record.unreadable;
  if (batch) {
    const where = `${record.topic}/${record.partition}`;
    const offsets = `${batch.firstOffset}-${record.offset}`;
    message.unreadable = {
      tooLarge: batch.tooLarge,
      message:
        `the record batch at offsets ${offsets} of ${where} (${batch.records} records) ${batch.message}` +
        (batch.tooLarge ? ' (WORKER_MAX_DECOMPRESSED_BATCH_BYTES)' : '') +
        '; none of its records was read, and they stay in the topic at those offsets',
      details: {
        first_offset: batch.firstOffset.toString(),
        last_offset: record.offset.toString(),
        records: batch.records,
      },
    };
  }
  return message;
}
