// What every scenario receives and returns.
import { SingleBar } from 'cli-progress';

export interface ScenarioOptions {
  /** Tiny sizes for CI: proves the harness works, measures nothing worth reading. */
  smoke: boolean;
  /** Repetitions of each measured run (median and spread are reported). */
  runs: number;
  log(line: string): void;
}

export interface Goal {
  name: string;
  target: string;
  value: number | null;
  unit: string;
  met: boolean | null;
  note?: string;
}

export interface ScenarioResult {
  scenario: string;
  smoke: boolean;
  startedAt: string;
  durationS: number;
  params: Record<string, unknown>;
  figures: Record<string, unknown>;
  goals: Goal[];
  /** Lines printed at the end: figures and ratios. */
  summary: string[];
}

export function goal(
  name: string,
  target: string,
  value: number | null,
  unit: string,
  met: boolean | null,
  note?: string,
): Goal {
  return {
    name,
    target,
    value: value === null || !Number.isFinite(value) ? null : Math.round(value * 1000) / 1000,
    unit,
    met,
    ...(note ? { note } : {}),
  };
}

/** A progress bar on a terminal, a line every 10% otherwise (CI logs). */
export function progress(label: string, total: number): { update(done: number): void; stop(): void } {
  if (process.stderr.isTTY) {
    const bar = new SingleBar({
      format: `  ${label} [{bar}] {percentage}% {value}/{total} {eta}s left`,
      stream: process.stderr,
      hideCursor: true,
    });
    bar.start(total, 0);
    return { update: (d) => bar.update(d), stop: () => bar.stop() };
  }
  let shown = -1;
  return {
    update(d) {
      const tenth = Math.floor((d / total) * 10);
      if (tenth > shown) {
        shown = tenth;
        process.stderr.write(`  ${label}: ${d}/${total}\n`);
      }
    },
    stop() {},
  };
}
