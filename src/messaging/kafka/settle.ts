// Readiness waits until each lane holds the partitions the broker means it to have. A member that joins a
// KIP-848 group is given at once only the partitions nobody holds; those that other members still hold
// reach it after they give them up. Reporting ready only then keeps a rolling update from stopping the
// next worker while this one's handover is still under way: the two handovers do not overlap
// (README, "Consumer groups, deploys and failures").
import type { DescribedGroup } from './admin.ts';

export interface SettlingLane {
  name: string;
  groupId: string;
  /** The member id the broker knows this lane by; undefined until it has joined. */
  memberId(): string | undefined;
  isAssigned(topic: string, partition: number): boolean;
}

export interface SettleOptions {
  lanes: SettlingLane[];
  describe: (groupIds: string[]) => Promise<DescribedGroup[]>;
  /** Ready anyway after this long (ms): a group that never settles must not keep a worker out of service. */
  timeoutMs: number;
  intervalMs?: number;
  /** False once the worker stops: the wait ends. */
  running: () => boolean;
  /** What is still missing, as a readiness detail. */
  onProgress?: (detail: string) => void;
}

export type SettleOutcome =
  | { settled: true; ms: number }
  | { settled: false; ms: number; reason: 'timeout' | 'stopped'; detail: string };

/** What one lane still waits for: undefined when it holds its whole target assignment. */
export function missingPartitions(group: DescribedGroup | undefined, lane: SettlingLane): string | undefined {
  const memberId = lane.memberId();
  if (memberId === undefined) return 'not joined yet';
  // A classic group has no target assignment to wait for.
  if (group === undefined || group.protocol !== 'consumer') return undefined;
  const member = group.members.find((m) => m.memberId === memberId);
  if (!member) return 'not in the group as the broker describes it yet';
  const missing: string[] = [];
  for (const [topic, partitions] of Object.entries(member.targetPartitions ?? {})) {
    for (const p of partitions) if (!lane.isAssigned(topic, p)) missing.push(`${topic}[${p}]`);
  }
  if (missing.length === 0) return undefined;
  return `waiting for ${missing.length} partition(s) other members still hold: ${missing.slice(0, 6).join(', ')}${missing.length > 6 ? ', ...' : ''}`;
}

export async function awaitSettled(options: SettleOptions): Promise<SettleOutcome> {
  const { lanes, describe, timeoutMs, running, onProgress } = options;
  const interval = options.intervalMs ?? 100;
  const started = Date.now();
  let detail = 'not described yet';
  for (;;) {
    if (!running()) return { settled: false, ms: Date.now() - started, reason: 'stopped', detail };
    try {
      const groups = await describe([...new Set(lanes.map((l) => l.groupId))]);
      const byId = new Map(groups.map((g) => [g.groupId, g]));
      const waiting = lanes.flatMap((lane) => {
        const missing = missingPartitions(byId.get(lane.groupId), lane);
        return missing === undefined ? [] : [`${lane.name}: ${missing}`];
      });
      if (waiting.length === 0) return { settled: true, ms: Date.now() - started };
      detail = waiting.join('; ');
    } catch (err) {
      detail = `describing the groups failed: ${err instanceof Error ? err.message : String(err)}`;
    }
    onProgress?.(detail);
    const left = timeoutMs - (Date.now() - started);
    if (left <= 0) return { settled: false, ms: Date.now() - started, reason: 'timeout', detail };
    await new Promise((r) => setTimeout(r, Math.min(interval, left)));
  }
}
