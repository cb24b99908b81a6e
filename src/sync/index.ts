export { SyncSource } from './sync-source.js';
export type { SyncProgress } from './sync-source.js';
export { SyncTarget } from './sync-target.js';
export type {
  SyncTargetOptions,
  AppliedEvent,
  ApplyTimings,
  SecurityEvent,
  SyncTargetStats,
} from './sync-target.js';
export type { SyncStats, BatchTrace, InitialSyncProgress } from './sync-stats.js';
export type { SyncSourceOptions, SyncMode, SyncTlsOptions } from './sync-options.js';
export { relaxedIntervalMs } from './sync-options.js';
export { verifyTrees } from './verify-trees.js';
export type { TreeDifference, VerifyTreesOptions } from './verify-trees.js';
export { DEFAULT_PRIORITY_CLASSES, priorityRanker } from './priority.js';
export type { PriorityClass } from './priority.js';
export type { CompressionMode } from './compression.js';
export { computeDelta, applyDelta } from './delta.js';
export type { DeltaOp, Delta } from './delta.js';
export { computeSignature, chooseBlockSize } from './signature.js';
export type { FileSignature } from './signature.js';
export { contentHash } from './content-hash.js';
