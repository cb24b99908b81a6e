/**
 * Live versus shadow load (seeds 002, 004), both as the utilisation one serving instance would see:
 * the shadow runs a `sample` fraction of all live traffic on a fraction of one instance's CPU, so its
 * CPU use is scaled back to the whole traffic and spread over the serving set before comparing.
 */
export interface ShadowSignal {
  /** Mean CPU utilisation of the serving instances (of their limit, or of one core). */
  liveLoad: number;
  /** The same, as predicted from the shadow's CPU use. */
  shadowLoad: number;
  /** (shadow − live) / live: positive when the shadow says the traffic costs more than live shows. */
  delta: number;
  /** The shadow's utilisation of its own (smaller) limit: near 1 it saturates first, an early warning. */
  shadowUtilisation: number;
  shadows: number;
  /**
   * Seed 002's rate delta: requests/s through the router (live) against the mirrored copies the shadows
   * answered, scaled back to the whole traffic; `relative` = (live − shadow) / shadow. It widens when a
   * shadow cannot keep up (copies dropped, failed or timed out), mutations included.
   */
  rate?: { live: number; shadow: number; relative: number };
}

/**
 * Exponentially smoothed shadow signal: `alpha` is the weight of the new sample. A change in the
 * number of shadows, or no previous (or no new) signal, restarts from the new one. `rate` is not
 * smoothed (the caller attaches the latest). Pure.
 */
export function smoothShadowSignal(
  prev: ShadowSignal | undefined,
  next: ShadowSignal | undefined,
  alpha: number,
): ShadowSignal | undefined {
  if (!next || !prev || prev.shadows !== next.shadows) return next;
  const mix = (a: number, b: number): number => a + alpha * (b - a);
  const liveLoad = mix(prev.liveLoad, next.liveLoad);
  const shadowLoad = mix(prev.shadowLoad, next.shadowLoad);
  return {
    liveLoad,
    shadowLoad,
    delta: (shadowLoad - liveLoad) / Math.max(liveLoad, 1e-3),
    shadowUtilisation: mix(prev.shadowUtilisation, next.shadowUtilisation),
    shadows: next.shadows,
  };
}

/** What the shadow alarm remembers between samples. Plain data. */
export interface ShadowAlarmState {
  /** Whether shadow and live are currently reported as diverging. */
  alarm: boolean;
  /** Consecutive samples on the other side of the threshold than `alarm` says. */
  streak: number;
}

/** The alarm off, no streak. */
export function initialShadowAlarmState(): ShadowAlarmState {
  return { alarm: false, streak: 0 };
}

/** Options of {@link stepShadowAlarm} (all required: the scaling step resolves them). */
export interface ShadowAlarmOptions {
  /** Threshold on |delta| (and on the rate's relative delta) above which the alarm rises. */
  threshold: number;
  /** Fraction of the threshold below which a raised alarm clears. */
  clearFraction: number;
  /** Samples in a row beyond the threshold before the alarm changes. */
  streak: number;
}

/** Outcome of {@link stepShadowAlarm}. */
export interface ShadowAlarmResult {
  state: ShadowAlarmState;
  /** Set when the alarm changed at this sample: `true` raised, `false` cleared. */
  changed?: boolean;
}

/**
 * The shadow–live hysteresis: the alarm rises when |delta| (or the rate's relative delta) is above
 * `threshold`, and clears once both are at or below `clearFraction × threshold`; either change only
 * after `streak` samples in a row on the new side, so noise around the threshold is not a stream of
 * events. A sample back on the current side resets the streak. Pure.
 */
export function stepShadowAlarm(
  o: ShadowAlarmOptions,
  s: ShadowAlarmState,
  signal: ShadowSignal,
): ShadowAlarmResult {
  const threshold = o.threshold * (s.alarm ? o.clearFraction : 1);
  const alarm = Math.abs(signal.delta) > threshold || (signal.rate?.relative ?? 0) > threshold;
  const streak = alarm === s.alarm ? 0 : s.streak + 1;
  if (streak < o.streak) return { state: { alarm: s.alarm, streak } };
  return { state: { alarm, streak: 0 }, changed: alarm };
}
