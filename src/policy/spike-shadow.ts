import type { DecisionForecast } from './decision.js';

/** Outcome of {@link spikeShadow}. */
export interface SpikeShadowResult {
  /** Shadows the spike rule asks for: 1 during a forecast spike, else 0. */
  shadows: number;
  /** Requests/s one serving instance handles at the target utilisation. */
  perInstanceAtTarget: number;
  /** Requests/s the serving set handles at the target utilisation (what the forecast is compared with). */
  capacityAtTarget: number;
  /** Set when the rule's answer changed: a shadow to create, or to retire. */
  change?: 'shadow-create' | 'shadow-retire';
}

/**
 * Seed 004's spike-shadow rule: one shadow while the forecast's upper bound exceeds what the serving
 * set handles at the target utilisation (`serving × capacityPerInstance × target`, strictly above),
 * none otherwise. `wasOn` is whether the rule's shadow is wanted now; a change is reported only with
 * a forecast (without one the shadow is not wanted, but its retirement waits for a forecast to say so).
 * Pure.
 */
export function spikeShadow(
  forecast: DecisionForecast | undefined,
  serving: number,
  capacityPerInstance: number,
  targetUtilization: number,
  wasOn: boolean,
): SpikeShadowResult {
  const per = capacityPerInstance * targetUtilization;
  const capacityAtTarget = serving * per;
  const spike = forecast !== undefined && per > 0 && forecast.upper > capacityAtTarget;
  const shadows = spike ? 1 : 0;
  const result = { shadows, perInstanceAtTarget: per, capacityAtTarget };
  if (spike === wasOn || !forecast) return result;
  return { ...result, change: spike ? 'shadow-create' : 'shadow-retire' };
}
