// policy: pure decisions (scale out/in, warm pool, resize, migrate, the Kubernetes HPA baseline).
// No I/O, no clock: time is an argument. The live loop and the simulator both run PredictiveScaler
// (observe every load sample, decide once per interval).
export type { Decision, DecisionForecast, DecisionInputs, DecisionKind } from './decision.js';
export { checkGuards, clampCount, initialGuardState, recordAction, resolveGuardOptions } from './guards.js';
export type { GuardOptions, GuardState, GuardVerdict, ResolvedGuardOptions } from './guards.js';
export {
  decideHorizontal,
  initialHorizontalState,
  predictiveCount,
  reactiveCount,
  resolveHorizontalPolicyOptions,
} from './horizontal-policy.js';
export type {
  HorizontalPolicyOptions,
  HorizontalResult,
  HorizontalSignals,
  HorizontalState,
  PolicyMode,
  ResolvedHorizontalPolicyOptions,
} from './horizontal-policy.js';
export { decideWarmPool, planScaleOut, resolveWarmPoolOptions } from './warm-pool-policy.js';
export type {
  ResolvedWarmPoolOptions,
  ScaleOutPlan,
  WarmPoolOptions,
  WarmPoolResult,
  WarmPoolSignals,
} from './warm-pool-policy.js';
export { decideVertical, echoSizeFraction, resolveVerticalPolicyOptions } from './vertical-policy.js';
export type {
  ResolvedVerticalPolicyOptions,
  VerticalInstance,
  VerticalPolicyOptions,
} from './vertical-policy.js';
export { decideMigration, initialMigrationState, resolveMigrationPolicyOptions } from './migration-policy.js';
export type {
  MigrationPhase,
  MigrationPolicyOptions,
  MigrationResult,
  MigrationSignals,
  MigrationState,
  ResolvedMigrationPolicyOptions,
} from './migration-policy.js';
export { decideHpa, hpaReplicaCount, initialHpaState, resolveHpaOptions } from './hpa-policy.js';
export type { HpaObservation, HpaOptions, HpaResult, HpaState, ResolvedHpaOptions } from './hpa-policy.js';
export { PredictiveScaler } from './predictive-scaler.js';
export type {
  PredictiveScalerOptions,
  ScalerDecision,
  ScalerInputs,
  ScalerObservation,
} from './predictive-scaler.js';
