// The size of a record as the publisher counts it: sends are split below MAX_PUBLISH_BYTES (kafkajs puts
// all messages for one partition of one send into a single record batch, and a batch above the broker's
// message.max.bytes is refused every time), and records waiting for acks are bounded in bytes.
import type { OutboundHeaders } from './records.ts';

/** The shape of a kafkajs message, without depending on kafkajs. */
export interface ChunkMessage {
  key?: Buffer | string | null;
  value: Buffer | string | null;
  headers?: OutboundHeaders;
  partition?: number;
}

/** Per-record overhead of the record format, roughly (attributes, varints, offsets, timestamps). */
const RECORD_OVERHEAD = 32;

function bytes(value: Buffer | string | null | undefined): number {
  if (value === null || value === undefined) return 0;
  return typeof value === 'string' ? Buffer.byteLength(value) : value.length;
}

function headerBytes(headers: OutboundHeaders | undefined): number {
  let total = 0;
  for (const [name, value] of Object.entries(headers ?? {})) {
    const values = Array.isArray(value) ? value : [value];
    for (const v of values) total += Buffer.byteLength(name) + bytes(v);
  }
  return total;
}

export function recordBytes(message: ChunkMessage): number {
  return RECORD_OVERHEAD + bytes(message.key) + bytes(message.value) + headerBytes(message.headers);
}
