// Exponential backoff with full jitter: retries from many partitions spread out instead of hammering
// a recovering database in lockstep.
export interface BackoffPolicy {
  initialMs: number;
  maxMs: number;
}

export function backoffDelay(
  policy: BackoffPolicy,
  attempt: number,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(policy.maxMs, policy.initialMs * 2 ** Math.min(attempt, 30));
  // Never below a quarter of the ceiling, so the first retries are not instant.
  return Math.round(ceiling / 4 + random() * ((ceiling * 3) / 4));
}
