// A message's identity (CONTRACT "Identity and effects"): the body correlation_id; else the
// kafka_correlationId header bytes; else its coordinates, which for a message redriven from a dead-letter
// topic are those of the first original (pattern-redrive-of), so a redrive is applied once. Written with
// the effect, and looked up by get_result when a caller that timed out asks for its outcome.
const COORDINATES = /^[A-Za-z0-9._-]{1,249}\/\d{1,10}\/\d{1,19}$/;

/** topic/partition/offset, as pattern-redrive-of carries it; undefined for anything else. */
export function readCoordinates(value: Buffer | undefined): string | undefined {
  const text = value?.toString('latin1');
  return text !== undefined && COORDINATES.test(text) ? text : undefined;
}

interface IdentityInput {
  bodyCorrelationId: string | null | undefined;
  headerCorrelationId: Buffer | undefined;
  topic: string;
  partition: number;
  offset: string;
  /** The pattern-redrive-of header's bytes, if any. */
  redriveOf?: Buffer | undefined;
}

/** A redrive's original, as pattern-redrive-of names it. */
export interface Coordinates {
  topic: string;
  partition: number;
  offset: string;
}

export function messageIdentity(input: IdentityInput): string {
  return identify(input).identity;
}

/**
 * The identity, and the original whose identity it is when it is taken from pattern-redrive-of (a message
 * without a correlation id of its own): the worker lets it be taken only once that original is settled
 * (stages/prepare.ts checkRedriveOriginal), as a producer may write any coordinates there.
 */
export function identify(input: IdentityInput): { identity: string; redriveOf?: Coordinates } {
  if (input.bodyCorrelationId) return { identity: `cid:${input.bodyCorrelationId.toLowerCase()}` };
  if (input.headerCorrelationId && input.headerCorrelationId.length > 0) {
    return { identity: `hdr:${input.headerCorrelationId.toString('base64')}` };
  }
  const named = readCoordinates(input.redriveOf);
  const original = named === undefined ? undefined : parseCoordinates(named);
  if (original && isEarlierInTopic(original, input)) return { identity: `off:${named}`, redriveOf: original };
  return { identity: `off:${input.topic}/${input.partition}/${input.offset}` };
}

function parseCoordinates(text: string): Coordinates {
  const [offset, partition, ...topic] = text.split('/').reverse();
  return { topic: topic.reverse().join('/'), partition: Number(partition), offset: offset as string };
}

/**
 * A redrive lands in its original's topic, after it: coordinates in another topic, or at or after this
 * message in its own partition, are not an original of this message (a forged marker could otherwise take
 * a later message's identity and have that message refused as a reuse).
 */
function isEarlierInTopic(original: Coordinates, self: Coordinates): boolean {
  if (original.topic !== self.topic) return false;
  return original.partition !== self.partition || BigInt(original.offset) < BigInt(self.offset);
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * The identities a request sent with this correlation id may have been recorded under, most likely
 * first: in the body (PatternClient, most producers), as a UTF-8 header (NestJS), or, for a UUID, as
 * Spring's 16 raw header bytes.
 */
export function identitiesOfCorrelationId(correlationId: string): string[] {
  const utf8 = `hdr:${Buffer.from(correlationId, 'utf8').toString('base64')}`;
  if (!UUID.test(correlationId)) return [utf8];
  const raw = `hdr:${Buffer.from(correlationId.replaceAll('-', ''), 'hex').toString('base64')}`;
  return [`cid:${correlationId.toLowerCase()}`, utf8, raw];
}
