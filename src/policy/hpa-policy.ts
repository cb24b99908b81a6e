import type { Decision } from './decision.js';

/**
 * Options of the Kubernetes HorizontalPodAutoscaler algorithm (autoscaling/v2 defaults), as in
 * kubernetes/pkg/controller/podautoscaler (replica_calculator.go, horizontal.go).
 */
export interface HpaOptions {
  /** Target value of the per-pod metric (e.g. 0.7 for 70 % utilisation). Required. */
  target: number;
  /** Ratio tolerance: no change while |metric/target − 1| ≤ tolerance. @default 0.1 */
  tolerance?: number;
  /** Sync period: the controller runs this often. @default 15000 */
  syncPeriodMs?: number;
  /** Scale-down stabilisation window (rolling max of recommendations). @default 300000 */
  scaleDownStabilizationMs?: number;
  /** Scale-up stabilisation window (rolling min of recommendations). @default 0 */
  scaleUpStabilizationMs?: number;
  /** Scale-up policies (selectPolicy Max): at most +percent % per period. @default 100 */
  scaleUpPercent?: number;
  /** Scale-up policies (selectPolicy Max): at most +pods per period. @default 4 */
  scaleUpPods?: number;
  /** Period of the scale-up policies. @default 15000 */
  scaleUpPeriodMs?: number;
  /** Scale-down policy: at most −percent % per period. @default 100 */
  scaleDownPercent?: number;
  /** Period of the scale-down policy. @default 15000 */
  scaleDownPeriodMs?: number;
  /** @default 1 */
  minReplicas?: number;
  /** @default 1000 */
  maxReplicas?: number;
}

/** {@link HpaOptions} with defaults applied. */
export type ResolvedHpaOptions = Required<HpaOptions>;

/** Applies the defaults of {@link HpaOptions} once. */
export function resolveHpaOptions(o: HpaOptions): ResolvedHpaOptions {
  if (!(o.target > 0)) throw new RangeError('target must be > 0');
  return {
    target: o.target,
    tolerance: o.tolerance ?? 0.1,
    syncPeriodMs: o.syncPeriodMs ?? 15_000,
    scaleDownStabilizationMs: o.scaleDownStabilizationMs ?? 300_000,
    scaleUpStabilizationMs: o.scaleUpStabilizationMs ?? 0,
    scaleUpPercent: o.scaleUpPercent ?? 100,
    scaleUpPods: o.scaleUpPods ?? 4,
    scaleUpPeriodMs: o.scaleUpPeriodMs ?? 15_000,
    scaleDownPercent: o.scaleDownPercent ?? 100,
    scaleDownPeriodMs: o.scaleDownPeriodMs ?? 15_000,
    minReplicas: o.minReplicas ?? 1,
    maxReplicas: o.maxReplicas ?? 1000,
  };
}

/** What the HPA sees at a sync. */
export interface HpaObservation {
  /** The scale target's spec replicas (ready, unready and missing pods together). */
  currentReplicas: number;
  /** Ready pods that reported the metric. */
  readyPods: number;
  /** Sum of the metric over those pods (e.g. 3 pods at 0.82 utilisation → 2.46). */
  metricSum: number;
  /** Pods not ready yet (starting): set aside, counted as 0 on a scale-up. */
  unreadyPods: number;
  /** Ready pods without a metric: 0 on a scale-up, the target (100 % of the desired value) on a scale-down. */
  missingPods?: number;
}

/** What the HPA remembers between syncs. Plain data; treat as immutable. */
export interface HpaState {
  /** Unstabilised recommendations with their time. */
  recommendations: readonly { at: number; replicas: number }[];
  /** Scale events (replica changes, + up / − down) for the rate policies. */
  events: readonly { at: number; change: number }[];
  lastSyncAt: number;
}

/** A fresh {@link HpaState}. */
export function initialHpaState(): HpaState {
  return { recommendations: [], events: [], lastSyncAt: Number.NEGATIVE_INFINITY };
}

/**
 * The replica calculator (`GetMetricReplicas`/`GetResourceReplicas`): usage ratio over the ready
 * pods; outside the tolerance, `ceil(ratio × ready)`. With unready pods on a scale-up (treated as
 * 0) or missing pods, the ratio is recomputed over all of them and the change is dropped if it
 * falls within the tolerance or flips direction.
 */
export function hpaReplicaCount(o: ResolvedHpaOptions, obs: HpaObservation): number {
  const current = obs.currentReplicas;
  const ready = obs.readyPods;
  const missing = obs.missingPods ?? 0;
  if (ready === 0 && missing === 0) return current; // no metrics: the controller skips the change
  let sum = obs.metricSum;
  const usageRatio = ready > 0 ? sum / ready / o.target : 1;
  const scaleUpWithUnready = obs.unreadyPods > 0 && usageRatio > 1;
  if (!scaleUpWithUnready && missing === 0) {
    if (Math.abs(1 - usageRatio) <= o.tolerance) return current;
    return Math.ceil(usageRatio * ready - 1e-9);
  }
  let n = ready;
  if (missing > 0) {
    if (usageRatio < 1) sum += missing * o.target; // "100 % of the desired value"
    n += missing; // on a scale-up they count as 0
  }
  if (scaleUpWithUnready) n += obs.unreadyPods;
  const newRatio = sum / n / o.target;
  if (
    Math.abs(1 - newRatio) <= o.tolerance ||
    (usageRatio < 1 && newRatio > 1) ||
    (usageRatio > 1 && newRatio < 1)
  )
    return current;
  const replicas = Math.ceil(newRatio * n - 1e-9);
  if ((newRatio < 1 && replicas > current) || (newRatio > 1 && replicas < current)) return current;
  return replicas;
}

/** Outcome of {@link decideHpa}. */
export interface HpaResult {
  /** Replicas to run (equals `currentReplicas` when nothing changes or it is not a sync time). */
  desired: number;
  state: HpaState;
  decisions: Decision[];
}

/**
 * One HPA sync (`reconcileAutoscaler` with behaviors): replica calculator → stabilisation
 * (rolling max over the scale-down window, rolling min over the scale-up window) → rate limits
 * (scale-up: max(+percent %, +pods) per period; scale-down: −percent % per period) → min/max.
 * Calls closer than the sync period to the last sync return the current count. Pure.
 */
export function decideHpa(
  o: ResolvedHpaOptions,
  state: HpaState,
  obs: HpaObservation,
  now: number,
): HpaResult {
  const current = obs.currentReplicas;
  if (now - state.lastSyncAt < o.syncPeriodMs) return { desired: current, state, decisions: [] };
  const proposed = hpaReplicaCount(o, obs);
  // Stabilisation (stabilizeRecommendationWithBehaviors).
  const keep = Math.max(o.scaleDownStabilizationMs, o.scaleUpStabilizationMs);
  let up = proposed;
  let down = proposed;
  for (const r of state.recommendations) {
    if (r.at > now - o.scaleUpStabilizationMs) up = Math.min(up, r.replicas);
    if (r.at > now - o.scaleDownStabilizationMs) down = Math.max(down, r.replicas);
  }
  let stabilized = current;
  if (stabilized < up) stabilized = up;
  if (stabilized > down) stabilized = down;
  const recommendations = [
    ...state.recommendations.filter((r) => r.at > now - keep),
    { at: now, replicas: proposed },
  ];
  // Rate limits (convertDesiredReplicasWithBehaviorRate).
  let added = 0;
  let removed = 0;
  for (const e of state.events) {
    if (e.change > 0 && e.at > now - o.scaleUpPeriodMs) added += e.change;
    if (e.change < 0 && e.at > now - o.scaleDownPeriodMs) removed -= e.change;
  }
  const upStart = current - added;
  const upLimit = Math.max(Math.ceil(upStart * (1 + o.scaleUpPercent / 100)), upStart + o.scaleUpPods);
  const downStart = current + removed;
  const downLimit = Math.floor(downStart * (1 - o.scaleDownPercent / 100));
  let desired = stabilized;
  let limitedBy = '';
  if (desired > current && desired > upLimit) {
    desired = Math.max(current, upLimit);
    limitedBy = ` (scale-up limited to ${upLimit} per ${o.scaleUpPeriodMs / 1000}s)`;
  } else if (desired < current && desired < downLimit) {
    desired = Math.min(current, downLimit);
    limitedBy = ` (scale-down limited to ${downLimit} per ${o.scaleDownPeriodMs / 1000}s)`;
  }
  desired = Math.min(o.maxReplicas, Math.max(o.minReplicas, desired));
  const keepEvents = Math.max(o.scaleUpPeriodMs, o.scaleDownPeriodMs);
  const events = state.events.filter((e) => e.at > now - keepEvents);
  if (desired !== current) events.push({ at: now, change: desired - current });
  const next: HpaState = { recommendations, events, lastSyncAt: now };
  if (desired === current) return { desired, state: next, decisions: [] };
  const avg = obs.readyPods > 0 ? obs.metricSum / obs.readyPods : 0;
  const decision: Decision = {
    kind: desired > current ? 'scale-out' : 'scale-in',
    at: now,
    from: current,
    to: desired,
    applied: true,
    reason: `hpa: metric ${avg.toFixed(2)} vs target ${o.target} over ${obs.readyPods} ready (${obs.unreadyPods} unready) → ${proposed}, stabilised ${stabilized}${limitedBy}`,
    inputs: { reactive: proposed, utilization: avg },
  };
  return { desired, state: next, decisions: [decision] };
}
