// Offsets are committed by topic name, so after a topic is deleted and created again the group's offsets
// for the name are the deleted topic's, and a worker started then read the new topic from them: records
// below were skipped without a word. Each commit now carries, in the offset's metadata string, the id of
// the topic its records were read from, and a committed offset read back under another id is not taken
// (fetcher.ts starts the partition from its log start). An offset committed without one (an operator's
// reset, an older worker, another client) is taken as before.
//
// The library commits with null metadata and drops the metadata it reads back, so its OffsetCommit and
// OffsetFetch calls are wrapped per consumer, as bounded-fetch.ts wraps Fetch.
import { kGetApi, type Admin, type Consumer } from '@platformatic/kafka';

const PREFIX = 'pattern-worker topic-id=';
/** A topic id as the library prints it (base64url of 16 bytes, or a UUID); nothing else is read back. */
const TOPIC_ID = /^[A-Za-z0-9_-]{22}$|^[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}$/;

/** A topic's id as metadata gives it; a broker without topic ids answers with the zero UUID. */
export const knownTopicId = (id: string | undefined): string | undefined =>
  id && !/^(A{22}|0{8}-0{4}-0{4}-0{4}-0{12})$/.test(id) ? id : undefined;

/** The metadata string committed with an offset of a topic read under `topicId`. */
export function commitMetadataOf(topicId: string): string {
  return `${PREFIX}${topicId}`;
}

/** The topic id a committed offset's metadata names, if it is one of ours. */
export function topicIdOfCommitMetadata(metadata: string | null | undefined): string | undefined {
  if (!metadata?.startsWith(PREFIX)) return undefined;
  const id = metadata.slice(PREFIX.length);
  return TOPIC_ID.test(id) ? id : undefined;
}

export interface CommitTags {
  /** The id of the topic a partition's records were read from; undefined when unknown. */
  topicIdOf(topic: string, partition: number): string | undefined;
  /** The metadata read back with each partition's committed offset (null for none). */
  onCommitted(topic: string, partition: number, metadata: string | null): void;
}

type Callback = (error: Error | null, result?: unknown) => void;
type Api = ((connection: unknown, ...args: unknown[]) => void) & { version: number };
type GetApi = (name: string, callback: (error: Error | null, api?: Api) => void) => void;

interface CommitPartition {
  partitionIndex: number;
  committedMetadata?: string | null;
}
interface FetchedPartition {
  partitionIndex: number;
  metadata?: string | null;
}
interface FetchedTopic {
  name: string;
  partitions: FetchedPartition[];
}

const installed = new WeakSet<object>();

/** Makes `consumer`'s commits carry each partition's topic id, and reports the metadata it reads back. */
export function tagCommits(consumer: Consumer | Admin, tags: CommitTags): void {
  if (installed.has(consumer)) throw new Error('commits of this consumer are tagged already');
  installed.add(consumer);
  const target = consumer as unknown as Record<typeof kGetApi, GetApi>;
  const original = target[kGetApi].bind(consumer);
  const wrapped = new WeakMap<Api, Api>();
  target[kGetApi] = (name, callback) =>
    original(name, (error, api) => {
      if (error || !api || (name !== 'OffsetCommit' && name !== 'OffsetFetch')) return callback(error, api);
      // The library asks again for an API after listing them; an API wrapped once is not wrapped again.
      if ((api as { tagged?: boolean }).tagged) return callback(null, api);
      let tagged = wrapped.get(api);
      if (!tagged) {
        tagged = Object.assign(name === 'OffsetCommit' ? withTopicIds(api, tags) : readingTags(api, tags), {
          version: api.version,
          tagged: true,
        });
        wrapped.set(api, tagged);
      }
      callback(null, tagged);
    });
}

/** OffsetCommit with each partition's topic id as its metadata (its topics are the last array argument). */
function withTopicIds(api: Api, tags: CommitTags): (connection: unknown, ...args: unknown[]) => void {
  return (connection, ...args) => {
    const topics = args.findLast((a): a is { name: string; partitions: CommitPartition[] }[] =>
      Array.isArray(a),
    );
    for (const { name, partitions } of topics ?? []) {
      for (const p of partitions) {
        const id = tags.topicIdOf(name, p.partitionIndex);
        p.committedMetadata = id === undefined ? null : commitMetadataOf(id);
      }
    }
    api(connection, ...args);
  };
}

/** OffsetFetch whose answer's metadata is reported before the library reads the offsets. */
function readingTags(api: Api, tags: CommitTags): (connection: unknown, ...args: unknown[]) => void {
  return (connection, ...args) => {
    const callback = args.pop() as Callback;
    api(connection, ...args, (error: Error | null, response?: unknown) => {
      if (!error) for (const topic of fetchedTopics(response)) report(topic, tags);
      callback(error, response);
    });
  };
}

/** Version 8 and later answer per group; earlier versions for the one group asked. */
function fetchedTopics(response: unknown): FetchedTopic[] {
  const r = response as { groups?: { topics?: FetchedTopic[] }[]; topics?: FetchedTopic[] } | undefined;
  return r?.groups ? r.groups.flatMap((g) => g.topics ?? []) : (r?.topics ?? []);
}

function report(topic: FetchedTopic, tags: CommitTags): void {
  for (const p of topic.partitions) tags.onCommitted(topic.name, p.partitionIndex, p.metadata ?? null);
}
