// Open-loop request load from a process of its own (requester-main.ts), as a client service would offer
// it: the harness's producer and result counter cannot delay the requests or the timing of their replies.
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { LoadResult } from './load.ts';
import { track } from './proc.ts';

export type RequestKind = 'search' | 'get_global_stats' | 'compute_analytics';
/** A search the requester sends, as the dataset makes them. */
export type SearchQuery = { search_query: string; limit: number; filters?: { language: string } };

export type RequesterCommand =
  | {
      id: number;
      cmd: 'connect';
      client: { brokers: string[]; topicPrefix: string; clientId: string };
      queries: SearchQuery[];
    }
  | { id: number; cmd: 'loop'; kind: RequestKind; rate: number; seconds: number }
  | { id: number; cmd: 'stop'; loop: number }
  | { id: number; cmd: 'close' };

export type RequesterReply =
  { id: number; ok: true; result?: LoadResult } | { id: number; ok: false; error: string };

type WithoutId<C> = C extends unknown ? Omit<C, 'id'> : never;
type Command = WithoutId<RequesterCommand>;

const MAIN = fileURLToPath(new URL('./requester-main.ts', import.meta.url));

/** A running open loop: `stop()` ends it early; `done` resolves with what it measured. */
export interface RemoteLoop {
  stop(): Promise<void>;
  done: Promise<LoadResult>;
}

export class Requester {
  readonly #child: ChildProcess;
  readonly #waiting = new Map<number, { resolve: (r: RequesterReply) => void; reject: (e: Error) => void }>();
  #next = 1;

  private constructor(child: ChildProcess) {
    this.#child = child;
    child.on('message', (reply: RequesterReply) => {
      const w = this.#waiting.get(reply.id);
      this.#waiting.delete(reply.id);
      w?.resolve(reply);
    });
    child.once('exit', (code, signal) => {
      for (const w of this.#waiting.values())
        w.reject(new Error(`the requester process exited (${signal ?? code}) with requests outstanding`));
      this.#waiting.clear();
    });
  }

  static async start(
    client: { brokers: string[]; topicPrefix: string; clientId: string },
    queries: SearchQuery[],
  ): Promise<Requester> {
    const child = fork(MAIN, [], {
      env: { ...process.env, LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    track(child);
    const r = new Requester(child);
    await r.#call({ cmd: 'connect', client, queries });
    return r;
  }

  async #call(cmd: Command, id = this.#next++): Promise<LoadResult | undefined> {
    const reply = await new Promise<RequesterReply>((resolve, reject) => {
      this.#waiting.set(id, { resolve, reject });
      this.#child.send({ ...cmd, id });
    });
    if (!reply.ok) throw new Error(`requester: ${reply.error}`);
    return reply.result;
  }

  /** The requester process (its CPU is part of the load generator's). */
  get pid(): number | undefined {
    return this.#child.pid;
  }

  /** Offers `rate` requests/s of `kind` for `seconds` or until stopped. */
  loop(kind: RequestKind, rate: number, seconds: number): RemoteLoop {
    const id = this.#next++;
    const done = this.#call({ cmd: 'loop', kind, rate, seconds }, id).then((result) => result as LoadResult);
    return {
      done,
      stop: async () => {
        await this.#call({ cmd: 'stop', loop: id });
      },
    };
  }

  async close(): Promise<void> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return;
    const exited = new Promise((r) => this.#child.once('exit', r));
    await this.#call({ cmd: 'close' }).catch(() => undefined);
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
}
