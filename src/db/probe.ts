// Watches database reachability for readiness: fast checks while it is down, slow ones while it is up.
import type { Pool } from './pool.ts';

export interface DatabaseProbe {
  /** Reports a failure seen elsewhere (an operation hit a transient error); speeds up re-checking. */
  reportFailure(reason: string): void;
  stop(): void;
}

export function startDatabaseProbe(
  pool: Pool,
  onChange: (ok: boolean, detail: string) => void,
  options: { upIntervalMs?: number; downIntervalMs?: number } = {},
): DatabaseProbe {
  const upInterval = options.upIntervalMs ?? 5_000;
  const downInterval = options.downIntervalMs ?? 500;
  let ok: boolean | undefined;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;

  const set = (next: boolean, detail: string) => {
    if (next !== ok) onChange(next, detail);
    ok = next;
  };
  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(check, ok ? upInterval : downInterval);
    timer.unref();
  };
  const check = () => {
    pool
      .query('SELECT 1')
      .then(
        () => set(true, 'reachable'),
        (err: unknown) => set(false, `unreachable: ${err instanceof Error ? err.message : String(err)}`),
      )
      .finally(schedule);
  };
  check();
  return {
    reportFailure(reason) {
      set(false, reason);
      if (timer) clearTimeout(timer);
      schedule();
    },
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
    },
  };
}
