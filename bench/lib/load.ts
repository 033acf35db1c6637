// Open-loop load: requests are due at fixed times whatever happened to earlier ones, and latency is
// measured from the due time, so a stall shows up in every request it delays (no coordinated omission).

export interface LoadResult {
  offeredRate: number;
  sent: number;
  latencies: number[];
  /** The worker's own time for each answer (its metadata.duration_ms), in the order of `latencies`. */
  effectMs?: number[];
  errors: number;
  firstError?: string;
  /** How late the generator itself fired, at worst (ms): a sign the load machine was saturated. */
  maxLagMs: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Offers `rate` requests/s for `seconds`, or until `stop` is aborted (then `sent` says how many went). */
export async function openLoop(
  rate: number,
  seconds: number,
  send: (i: number) => Promise<{ success: boolean; error?: unknown; metadata?: { duration_ms?: number } }>,
  stop?: AbortSignal,
): Promise<LoadResult> {
  const n = Math.max(1, Math.round(rate * seconds));
  const interval = 1000 / rate;
  const latencies: number[] = [];
  const effectMs: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  let maxLagMs = 0;
  const pending: Promise<void>[] = [];
  const t0 = performance.now() + 5;
  let sent = 0;
  for (let i = 0; i < n; i++) {
    const due = t0 + i * interval;
    const wait = due - performance.now();
    if (wait > 1) await sleep(wait - 0.5);
    if (stop?.aborted) break;
    sent++;
    const sentAt = performance.now();
    maxLagMs = Math.max(maxLagMs, sentAt - due);
    // From the due time when the generator is late (no coordinated omission), from the send when a timer
    // fired a little early (never a latency shorter than the request really took).
    const from = Math.min(due, sentAt);
    pending.push(
      send(i).then(
        (r) => {
          if (r.success) {
            latencies.push(performance.now() - from);
            effectMs.push(r.metadata?.duration_ms ?? NaN);
          } else {
            errors++;
            firstError ??= JSON.stringify(r.error);
          }
        },
        (err: unknown) => {
          errors++;
          firstError ??= err instanceof Error ? err.message : String(err);
        },
      ),
    );
  }
  await Promise.all(pending);
  return {
    offeredRate: rate,
    sent,
    latencies,
    ...(effectMs.some((ms) => !Number.isNaN(ms)) ? { effectMs } : {}),
    errors,
    ...(firstError ? { firstError } : {}),
    maxLagMs: Math.round(maxLagMs * 10) / 10,
  };
}
