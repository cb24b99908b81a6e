import type { GuardOptions } from './guards.js';

/** The scaling fields of a service spec the guards are derived from (structurally, `ServiceSpec['scaling']`). */
export interface GuardSource {
  /** Fewest serving instances. */
  min: number;
  /** Most serving instances. */
  max: number;
  /** Step of the forecast series (ms). */
  step: number;
  /** Scale-in stabilisation window (ms). */
  stabilization: number;
}

/** Fraction of the stabilisation window that a scale-in waits after any scaling action. */
export const SCALE_IN_COOLDOWN_FRACTION = 0.6;
/** Forecast steps in the window of the action budget. */
export const ACTION_WINDOW_STEPS = 60;

/**
 * The guards of a service, derived from its spec in the units of its own clock: `min`/`max` as the
 * count bounds, a scale-in cooldown of {@link SCALE_IN_COOLDOWN_FRACTION} of the stabilisation window,
 * and the action budget (the guards' default count) over {@link ACTION_WINDOW_STEPS} forecast steps.
 * Pure.
 */
export function derivedGuards(s: GuardSource): GuardOptions {
  return {
    minCount: s.min,
    maxCount: s.max,
    scaleInCooldownMs: s.stabilization * SCALE_IN_COOLDOWN_FRACTION,
    actionWindowMs: s.step * ACTION_WINDOW_STEPS,
  };
}
