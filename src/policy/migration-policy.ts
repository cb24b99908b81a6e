import type { Decision } from './decision.js';

/** Options of {@link decideMigration} (seeds 003, 004). */
export interface MigrationPolicyOptions {
  /** Readiness score (0–100) at which an echo is pre-provisioned on a target host. @default 60 */
  provisionThreshold?: number;
  /** Confidence the prediction needs for pre-provisioning. @default 0.6 */
  minConfidence?: number;
  /** Readiness score at which traffic switches to the synced echo. @default 80 */
  switchThreshold?: number;
  /** Resource usage (0–1) at which traffic switches even below `switchThreshold` (seed 004's critical threshold). @default 0.9 */
  criticalUsage?: number;
  /** Below this score a pending migration is cancelled and its echo retired (hysteresis). @default 40 */
  cancelBelow?: number;
  /** A provisioned echo not switched to within this time is retired. @default 1800000 */
  maxPendingMs?: number;
}

/** {@link MigrationPolicyOptions} with defaults applied. */
export type ResolvedMigrationPolicyOptions = Required<MigrationPolicyOptions>;

/** Applies the defaults of {@link MigrationPolicyOptions} once. */
export function resolveMigrationPolicyOptions(
  o: MigrationPolicyOptions = {},
): ResolvedMigrationPolicyOptions {
  const r = {
    provisionThreshold: o.provisionThreshold ?? 60,
    minConfidence: o.minConfidence ?? 0.6,
    switchThreshold: o.switchThreshold ?? 80,
    criticalUsage: o.criticalUsage ?? 0.9,
    cancelBelow: o.cancelBelow ?? 40,
    maxPendingMs: o.maxPendingMs ?? 1_800_000,
  };
  if (!(r.cancelBelow <= r.provisionThreshold && r.provisionThreshold <= r.switchThreshold)) {
    throw new RangeError('expected cancelBelow ≤ provisionThreshold ≤ switchThreshold');
  }
  return r;
}

/** Where one instance's migration stands. */
export type MigrationPhase = 'idle' | 'provisioning' | 'switching' | 'retiring';

/** What the migration policy remembers per instance. Plain data. */
export interface MigrationState {
  phase: MigrationPhase;
  /** When the current phase began. */
  since: number;
  /** Host the echo was provisioned on. */
  targetHost?: string;
}

/** A fresh {@link MigrationState}. */
export function initialMigrationState(now = 0): MigrationState {
  return { phase: 'idle', since: now };
}

/** What the migration policy sees for one instance. */
export interface MigrationSignals {
  instance: string;
  /** Migration readiness score in [0, 100] (predict's `migrationReadinessScore`). */
  readiness: number;
  /** Prediction confidence in [0, 1]. */
  confidence: number;
  /** Resource usage of the instance in [0, 1]. */
  usage: number;
  /** Host to pre-provision on (with one host: the same host, as a fresh instance). */
  targetHost: string;
  /** The pre-provisioned echo has caught up with the primary's state. */
  echoSynced: boolean;
  /** The planned switchover has completed (the echo serves). */
  switchedOver: boolean;
}

/** Outcome of {@link decideMigration}. */
export interface MigrationResult {
  state: MigrationState;
  decisions: Decision[];
}

/**
 * Predictive migration as a state machine: readiness past `provisionThreshold` with enough
 * confidence → `migrate-provision` (an echo on the target, synced by the executor); once synced
 * and readiness past `switchThreshold` or usage past `criticalUsage` → `migrate-switchover`
 * (the planned switchover); once switched → `migrate-retire` (the old instance). Readiness
 * falling below `cancelBelow`, or the echo waiting longer than `maxPendingMs`, → `migrate-cancel`
 * (the echo is retired). Pure.
 */
export function decideMigration(
  o: ResolvedMigrationPolicyOptions,
  state: MigrationState,
  s: MigrationSignals,
  now: number,
): MigrationResult {
  const inputs: Decision['inputs'] = { readiness: s.readiness, confidence: s.confidence, usage: s.usage };
  const d = (kind: Decision['kind'], from: number, to: number, reason: string, host?: string): Decision => ({
    kind,
    at: now,
    from,
    to,
    applied: true,
    instance: s.instance,
    ...(host !== undefined ? { host } : {}),
    reason,
    inputs,
  });
  const score = s.readiness.toFixed(0);
  switch (state.phase) {
    case 'idle': {
      if (s.readiness >= o.provisionThreshold && s.confidence >= o.minConfidence) {
        return {
          state: { phase: 'provisioning', since: now, targetHost: s.targetHost },
          decisions: [
            d(
              'migrate-provision',
              0,
              1,
              `readiness ${score} ≥ ${o.provisionThreshold} with confidence ${s.confidence.toFixed(2)} ≥ ${o.minConfidence}: pre-provision an echo on ${s.targetHost}`,
              s.targetHost,
            ),
          ],
        };
      }
      return { state, decisions: [] };
    }
    case 'provisioning': {
      const host = state.targetHost ?? s.targetHost;
      if (s.readiness < o.cancelBelow || now - state.since > o.maxPendingMs) {
        const why =
          s.readiness < o.cancelBelow
            ? `readiness ${score} fell below ${o.cancelBelow}`
            : `no switchover within ${Math.round(o.maxPendingMs / 60000)} min`;
        return {
          state: { phase: 'idle', since: now },
          decisions: [d('migrate-cancel', 1, 0, `${why}: retire the echo on ${host}`, host)],
        };
      }
      if (s.echoSynced && (s.readiness >= o.switchThreshold || s.usage >= o.criticalUsage)) {
        const why =
          s.readiness >= o.switchThreshold
            ? `readiness ${score} ≥ ${o.switchThreshold}`
            : `usage ${(s.usage * 100).toFixed(0)} % ≥ critical ${o.criticalUsage * 100} %`;
        return {
          state: { phase: 'switching', since: now, targetHost: host },
          decisions: [
            d('migrate-switchover', 0, 1, `${why}, echo synced: planned switchover to ${host}`, host),
          ],
        };
      }
      return { state, decisions: [] };
    }
    case 'switching': {
      if (s.switchedOver) {
        return {
          state: {
            phase: 'retiring',
            since: now,
            ...(state.targetHost ? { targetHost: state.targetHost } : {}),
          },
          decisions: [
            d(
              'migrate-retire',
              1,
              0,
              `switched over to ${state.targetHost ?? s.targetHost}: retire ${s.instance}`,
            ),
          ],
        };
      }
      return { state, decisions: [] };
    }
    case 'retiring':
      return { state: { phase: 'idle', since: now }, decisions: [] };
  }
}
