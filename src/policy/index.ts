// policy: pure decisions (scale out/in, warm pool, resize, migrate, the Kubernetes HPA baseline).
// No I/O, no clock: time is an argument. The live autoscaler and the simulator both call scalingStep
// (shadow signal and alarm, capacity estimate, PredictiveScaler, spike shadows, the pool's window)
// with the options scalingOptionsFromSpec derives from a service spec.
// placement chooses hosts (anti-affinity, zones, capacity) and plans the recovery from a lost host.
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
export { DEFAULT_DECISION_INTERVAL_MS, PredictiveScaler } from './predictive-scaler.js';
export type {
  PredictiveScalerOptions,
  ScalerDecision,
  ScalerInputs,
  ScalerObservation,
} from './predictive-scaler.js';
export { stabilisePool } from './pool-window.js';
export type { PoolRecommendation, PoolWindowResult } from './pool-window.js';
export { initialShadowAlarmState, smoothShadowSignal, stepShadowAlarm } from './shadow-hysteresis.js';
export type {
  ShadowAlarmOptions,
  ShadowAlarmResult,
  ShadowAlarmState,
  ShadowSignal,
} from './shadow-hysteresis.js';
export { spikeShadow } from './spike-shadow.js';
export type { SpikeShadowResult } from './spike-shadow.js';
export { estimateCapacity, resolveCapacityEstimateOptions } from './capacity-estimate.js';
export type {
  CapacityEstimate,
  CapacityEstimateOptions,
  CapacityEstimateResult,
  CapacityEstimateState,
  ResolvedCapacityEstimateOptions,
} from './capacity-estimate.js';
export { ACTION_WINDOW_STEPS, derivedGuards, SCALE_IN_COOLDOWN_FRACTION } from './derived-guards.js';
export type { GuardSource } from './derived-guards.js';
export { MAX_WARM_LEAD_MS, scalingOptionsFromSpec } from './scaler-options.js';
export type { ScalingSpec } from './scaler-options.js';
export {
  createScalingPolicy,
  initialScalingState,
  resolveScalingOptions,
  scalingStep,
} from './scaling-step.js';
export type {
  LastScalingDecision,
  ResolvedScalingOptions,
  ScalingCounts,
  ScalingDecision,
  ScalingObservation,
  ScalingOptions,
  ScalingPolicy,
  ScalingRecord,
  ScalingState,
  ScalingStepResult,
} from './scaling-step.js';
export { fits, place } from './placement.js';
export type {
  PlacementDecision,
  PlacementHost,
  PlacementHostState,
  PlacementInput,
  PlacementInstance,
  PlacementRequest,
  PlacementRole,
} from './placement.js';
export { planHostLoss } from './placement-loss.js';
export type { HostLossInput, HostLossPlan, HostLossStep } from './placement-loss.js';
