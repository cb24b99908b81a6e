/** Options of the action guards every scaling policy passes through. */
export interface GuardOptions {
  /** Fewest serving instances. @default 1 */
  minCount?: number;
  /** Most serving instances. @default 1000 */
  maxCount?: number;
  /** Time after a scale-out before another scale-out. @default 0 */
  scaleOutCooldownMs?: number;
  /** Time after any scaling action before a scale-in (damps flapping). @default 180000 */
  scaleInCooldownMs?: number;
  /** Most scaling actions within `actionWindowMs` (bound corrections are never held back). @default 20 */
  maxActionsPerWindow?: number;
  /** Window of `maxActionsPerWindow`. @default 3600000 */
  actionWindowMs?: number;
}

/** {@link GuardOptions} with defaults applied. */
export type ResolvedGuardOptions = Required<GuardOptions>;

/** Applies the defaults of {@link GuardOptions} once. */
export function resolveGuardOptions(o: GuardOptions = {}): ResolvedGuardOptions {
  const minCount = Math.max(0, Math.floor(o.minCount ?? 1));
  return {
    minCount,
    maxCount: Math.max(minCount, Math.floor(o.maxCount ?? 1000)),
    scaleOutCooldownMs: o.scaleOutCooldownMs ?? 0,
    scaleInCooldownMs: o.scaleInCooldownMs ?? 180_000,
    maxActionsPerWindow: o.maxActionsPerWindow ?? 20,
    actionWindowMs: o.actionWindowMs ?? 3_600_000,
  };
}

/** What the guards remember between decisions. Plain data; treat as immutable. */
export interface GuardState {
  lastScaleOutAt: number;
  lastScaleInAt: number;
  /** Times of the recent actions (within the window). */
  actionTimes: readonly number[];
}

/** A fresh guard state (no action yet). */
export function initialGuardState(): GuardState {
  return {
    lastScaleOutAt: Number.NEGATIVE_INFINITY,
    lastScaleInAt: Number.NEGATIVE_INFINITY,
    actionTimes: [],
  };
}

/** Outcome of {@link checkGuards}. */
export interface GuardVerdict {
  /** True when the change may go ahead now. */
  allowed: boolean;
  /** Why it was held back (empty when allowed). */
  reason: string;
}

/** Clamps a count into the guard's [minCount, maxCount]. */
export function clampCount(o: ResolvedGuardOptions, n: number): number {
  return Math.min(o.maxCount, Math.max(o.minCount, Math.ceil(n)));
}

/**
 * Whether a change from `from` to `to` instances may happen at `now`. A change that only brings
 * the count back inside [minCount, maxCount] is always allowed.
 */
export function checkGuards(
  o: ResolvedGuardOptions,
  s: GuardState,
  from: number,
  to: number,
  now: number,
): GuardVerdict {
  if (to === from) return { allowed: true, reason: '' };
  if ((from < o.minCount && to <= o.minCount) || (from > o.maxCount && to >= o.maxCount))
    return { allowed: true, reason: '' };
  if (to > from && now - s.lastScaleOutAt < o.scaleOutCooldownMs) {
    return {
      allowed: false,
      reason: `scale-out cooldown (${fmtMs(o.scaleOutCooldownMs - (now - s.lastScaleOutAt))} left)`,
    };
  }
  if (to < from) {
    const last = Math.max(s.lastScaleOutAt, s.lastScaleInAt);
    if (now - last < o.scaleInCooldownMs)
      return {
        allowed: false,
        reason: `scale-in cooldown (${fmtMs(o.scaleInCooldownMs - (now - last))} left)`,
      };
  }
  const recent = s.actionTimes.filter((t) => now - t < o.actionWindowMs).length;
  if (recent >= o.maxActionsPerWindow) {
    return {
      allowed: false,
      reason: `max ${o.maxActionsPerWindow} actions per ${fmtMs(o.actionWindowMs)} reached`,
    };
  }
  return { allowed: true, reason: '' };
}

/** The guard state after an action from `from` to `to` at `now`. */
export function recordAction(
  o: ResolvedGuardOptions,
  s: GuardState,
  from: number,
  to: number,
  now: number,
): GuardState {
  if (to === from) return s;
  const actionTimes = [...s.actionTimes.filter((t) => now - t < o.actionWindowMs), now];
  return to > from ? { ...s, lastScaleOutAt: now, actionTimes } : { ...s, lastScaleInAt: now, actionTimes };
}

/** `90000` → `1m30s`, for reasons. */
export function fmtMs(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return s % 60 ? `${m}m${s % 60}s` : `${m}m`;
  const h = Math.floor(m / 60);
  return m % 60 ? `${h}h${m % 60}m` : `${h}h`;
}
