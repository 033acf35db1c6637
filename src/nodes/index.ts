export { NodePatternStorageEffect } from './node-pattern-storage-effect.ts';
export { NodePatternQueryEffect } from './node-pattern-query-effect.ts';
export { NodePatternUpdateEffect, type UsageBatchItem } from './node-pattern-update-effect.ts';
export { NodePatternAnalyticsEffect } from './node-pattern-analytics-effect.ts';
export type { ExecuteContext } from './effect-node.ts';
export type { EffectContext } from './effect-runner.ts';
