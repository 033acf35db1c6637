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

export function messageIdentity(input: IdentityInput): string {
  if (input.bodyCorrelationId) return `cid:${input.bodyCorrelationId.toLowerCase()}`;
  if (input.headerCorrelationId && input.headerCorrelationId.length > 0) {
    return `hdr:${input.headerCorrelationId.toString('base64')}`;
  }
  const original = redrivenFrom(input);
  if (original) return `off:${original.topic}/${original.partition}/${original.offset}`;
  return `off:${input.topic}/${input.partition}/${input.offset}`;
}

/**
 * The original whose identity this message takes (pattern-redrive-of), when it has no correlation id of
 * its own: the worker lets it do so only once that original is settled (stages/prepare.ts
 * checkRedriveOriginal), as a producer may write any coordinates there.
 */
export function redrivenFrom(
  input: IdentityInput,
): { topic: string; partition: number; offset: string } | undefined {
  if (input.bodyCorrelationId) return undefined;
  if (input.headerCorrelationId && input.headerCorrelationId.length > 0) return undefined;
  const original = readCoordinates(input.redriveOf);
  if (!original || !isEarlierInTopic(original, input)) return undefined;
  const [offset, partition, ...topic] = original.split('/').reverse();
  return { topic: topic.reverse().join('/'), partition: Number(partition), offset: offset as string };
}

/**
 * A redrive lands in its original's topic, after it: coordinates in another topic, or at or after this
 * message in its own partition, are not an original of this message (a forged marker could otherwise take
 * a later message's identity and have that message refused as a reuse).
 */
function isEarlierInTopic(
  coordinates: string,
  self: { topic: string; partition: number; offset: string },
): boolean {
  const [offset, partition, ...topic] = coordinates.split('/').reverse();
  if (topic.reverse().join('/') !== self.topic) return false;
  return Number(partition) !== self.partition || BigInt(offset as string) < BigInt(self.offset);
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
