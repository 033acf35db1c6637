// kafkajs keeps a group's committed offsets in one object per group on its cluster, shared by the offset
// manager of every generation. When an assignment changes, the new generation's manager clears that
// object down to its own topics, while the previous generation's manager can still be finishing a fetch:
// it then reads `committedOffsets()[topic][partition]` of a topic that is gone and throws "Cannot read
// properties of undefined (reading 'N')" (kafkajs#558, #1366), and the consumer crashes. Each lane then
// had to replace its consumer, which joined as a new member and cost another rebalance.
//
// The guard gives every manager's own topics an entry before the methods that read them, and ignores a
// resolve for a topic the manager no longer holds (the engine commits what it has done itself; an offset
// of a revoked partition means nothing to this generation). Idempotent; installed when this module loads.
import { createRequire } from 'node:module';

interface OffsetManagerShape {
  topics: string[];
  resolvedOffsets: Record<string, Record<string, string> | undefined>;
  committedOffsets(): Record<string, Record<string, string> | undefined>;
}

type Method = (this: OffsetManagerShape, ...args: unknown[]) => unknown;

const GUARDED = Symbol.for('pattern-worker.offset-manager-guard');

function holdOwnTopics(manager: OffsetManagerShape): void {
  const committed = manager.committedOffsets();
  for (const topic of manager.topics) {
    committed[topic] ??= {};
    manager.resolvedOffsets[topic] ??= {};
  }
}

export function installOffsetManagerGuard(): void {
  const require = createRequire(import.meta.url);
  const OffsetManager = require('kafkajs/src/consumer/offsetManager') as {
    prototype: Record<string | symbol, unknown>;
  };
  const proto = OffsetManager.prototype;
  if (proto[GUARDED]) return;
  for (const name of ['resolveOffsets', 'uncommittedOffsets', 'countResolvedOffsets']) {
    const original = proto[name] as Method;
    proto[name] = function (this: OffsetManagerShape, ...args: unknown[]) {
      holdOwnTopics(this);
      return original.apply(this, args);
    };
  }
  const resolveOffset = proto.resolveOffset as Method;
  proto.resolveOffset = function (this: OffsetManagerShape, ...args: unknown[]) {
    const [{ topic }] = args as [{ topic: string }];
    if (!this.resolvedOffsets[topic]) return undefined;
    return resolveOffset.apply(this, args);
  };
  proto[GUARDED] = true;
}

installOffsetManagerGuard();
