// Splits a unit's records into produce requests that the broker accepts. kafkajs puts all messages for
// one partition of one sendBatch into a single record batch, and a batch above the broker's
// message.max.bytes (1 MiB by default) is refused every time: retried for ever, it would stall the
// partition. Single records are bounded before they get here (outcomes.ts).
import type { OutboundHeaders } from './records.ts';

/** The shape of a kafkajs message, without depending on kafkajs. */
export interface ChunkMessage {
  key?: Buffer | string | null;
  value: Buffer | string | null;
  headers?: OutboundHeaders;
  partition?: number;
}

export interface TopicChunk {
  topic: string;
  messages: ChunkMessage[];
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

/** Chunks of at most `maxBytes` (a record larger than that goes alone), in the original order. */
export function chunkBySize(records: TopicChunk[], maxBytes: number): TopicChunk[][] {
  const chunks: TopicChunk[][] = [];
  let current = new Map<string, ChunkMessage[]>();
  let size = 0;
  const flush = () => {
    if (current.size > 0) chunks.push([...current].map(([topic, messages]) => ({ topic, messages })));
    current = new Map();
    size = 0;
  };
  for (const { topic, messages } of records) {
    for (const message of messages) {
      const n = recordBytes(message);
      if (size > 0 && size + n > maxBytes) flush();
      const list = current.get(topic);
      if (list) list.push(message);
      else current.set(topic, [message]);
      size += n;
    }
  }
  flush();
  return chunks;
}
