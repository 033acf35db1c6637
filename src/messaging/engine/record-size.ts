// The size of a record as the broker counts it against message.max.bytes, roughly (a little over): the
// publisher splits its sends and bounds what waits for acks by it, and the stages keep records within the
// limit with it. Fields are `unknown`: the check before queueing (stages/record-check.ts) measures records
// as they may arrive at run time.
import { headerEntries } from './records.ts';

/** The fields of a record that are checked, as they may arrive at run time (OutboundRecord fits). */
export interface CheckedRecord {
  topic: unknown;
  partition?: unknown;
  key?: unknown;
  value?: unknown;
  headers?: unknown;
}

// Per record: attributes, timestamp and offset deltas, lengths (varints); per header: two lengths.
export const RECORD_OVERHEAD = 64;
const HEADER_OVERHEAD = 10;

export function bytesOf(value: unknown): number {
  if (typeof value === 'string') return Buffer.byteLength(value);
  if (Buffer.isBuffer(value)) return value.length;
  return 0;
}

/** The size of one header (name and each value) as the record format stores it, roughly. */
export function headerSize(name: string, values: readonly unknown[]): number {
  const nameBytes = Buffer.byteLength(name);
  return values.reduce<number>((n, v) => n + nameBytes + bytesOf(v) + HEADER_OVERHEAD, 0);
}

/** The size of a record as the broker counts it against message.max.bytes, roughly (a little over). */
export function recordSize(record: CheckedRecord): number {
  let size = RECORD_OVERHEAD + bytesOf(record.key) + bytesOf(record.value);
  const headers = record.headers;
  if (Array.isArray(headers)) {
    // Entries in wire order: a malformed one counts what it has (the check before queueing refuses it).
    for (const [name, value] of headerEntries(headers))
      size += bytesOf(name) + bytesOf(value) + HEADER_OVERHEAD;
  } else if (typeof headers === 'object' && headers !== null) {
    for (const name of Object.keys(headers)) {
      const value: unknown = (headers as Record<string, unknown>)[name];
      size += headerSize(name, Array.isArray(value) ? value : [value]);
    }
  }
  return size;
}
