// Runs the librdkafka scripts beside this file with Debian's python3 (python3-confluent-kafka): hostile
// records are produced, and topics read back, by a client independent of the worker's kafkajs.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

const PYTHON = '/usr/bin/python3';

/** Bytes: hex, UTF-8 text, a unit repeated to a length, or the coordinates message i of the batch gets. */
export type ByteSpec =
  { hex: string } | { text: string } | { repeat: string; bytes: number } | { coords_of: number };

export interface PoisonRecord {
  topic: string;
  partition?: number;
  key?: ByteSpec | null;
  value: ByteSpec | null;
  headers?: [string, ByteSpec | null][];
}

export interface Digest {
  len: number;
  sha: string;
  /** Only for values up to 2 KB (consume.py). */
  hex?: string;
}

export interface Produced {
  index: number;
  topic: string;
  partition: number;
  offset: number;
  /** The record's CreateTime (ms), set by librdkafka when it was produced. */
  timestamp: number;
  error?: string;
  key: Digest | null;
  value: Digest | null;
  headers: [string, Digest | null][];
}

export interface ReadRecord {
  topic: string;
  partition: number;
  offset: number;
  timestamp: number;
  key: Digest | null;
  value: Digest | null;
  headers: [string, Digest | null][];
}

async function runScript(script: string, input: unknown): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, [join(import.meta.dirname, script)], { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.once('error', reject);
    child.once('exit', (code) => {
      if (code === 0) resolve(Buffer.concat(out).toString('utf8'));
      else reject(new Error(`${script} exited with ${code}: ${err}`));
    });
    child.stdin.end(JSON.stringify(input));
  });
}

export async function producePoison(brokers: string, messages: PoisonRecord[]): Promise<Produced[]> {
  const produced = JSON.parse(await runScript('produce.py', { brokers, messages })) as Produced[];
  const failed = produced.filter((p) => p.error);
  if (failed.length > 0) throw new Error(`produce.py: ${JSON.stringify(failed.slice(0, 5))}`);
  return produced;
}

export async function readTopics(
  brokers: string,
  topics: string[],
): Promise<{ records: ReadRecord[]; missing: string[] }> {
  return JSON.parse(await runScript('consume.py', { brokers, topics })) as {
    records: ReadRecord[];
    missing: string[];
  };
}

export const text = (t: string): ByteSpec => ({ text: t });
export const hex = (b: Buffer | number[]): ByteSpec => ({ hex: Buffer.from(b).toString('hex') });
export const repeat = (unit: string, bytes: number): ByteSpec => ({ repeat: unit, bytes });
export const json = (v: unknown): ByteSpec => ({ text: JSON.stringify(v) });

/** librdkafka writes `value` to partition 0 of `topic` in a transaction it never ends
 * (open-transaction.py); kill the process it returns when done. */
export async function openTransaction(
  brokers: string,
  topic: string,
  value: string,
  timeoutMs: number,
): Promise<ChildProcess> {
  const hostile = spawn(
    PYTHON,
    [join(import.meta.dirname, 'open-transaction.py'), brokers, topic, '0', value, String(timeoutMs)],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  await new Promise((resolve, reject) => {
    hostile.stdout.once('data', resolve);
    hostile.once('exit', (code) => reject(new Error(`open-transaction.py exited with ${code}`)));
  });
  return hostile;
}
