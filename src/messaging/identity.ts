// A message's identity (CONTRACT "Identity and effects"): the body correlation_id; else the
// kafka_correlationId header bytes; else its coordinates.
export function messageIdentity(input: {
  bodyCorrelationId: string | null | undefined;
  headerCorrelationId: Buffer | undefined;
  topic: string;
  partition: number;
  offset: string;
}): string {
  if (input.bodyCorrelationId) return `cid:${input.bodyCorrelationId.toLowerCase()}`;
  if (input.headerCorrelationId && input.headerCorrelationId.length > 0) {
    return `hdr:${input.headerCorrelationId.toString('base64')}`;
  }
  return `off:${input.topic}/${input.partition}/${input.offset}`;
}
