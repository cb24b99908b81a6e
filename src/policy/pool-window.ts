/** One warm-pool size recommended at one time, remembered for the pool's stabilisation window. */
export interface PoolRecommendation {
  /** When it was recommended (ms, the caller's clock). */
  at: number;
  /** Echoes recommended. */
  size: number;
}

/** Outcome of {@link stabilisePool}. */
export interface PoolWindowResult {
  /** The recommendations still inside the window, oldest first, the new one last (plain data). */
  window: PoolRecommendation[];
  /** Echoes to keep warm: the largest recommendation within the window. */
  size: number;
}

/**
 * The warm pool's stabilisation window: the pool grows at once and shrinks only to the largest size
 * recommended within the last `windowMs` (exclusive at the far edge: a recommendation exactly
 * `windowMs` old has left it), as the serving set's scale-in does. An echo stopped and started again
 * at every wobble of the forecast is a cold start wasted. Pure: the window is returned, not kept.
 *
 * @param window the window returned by the previous call (`[]` at first)
 * @param at time of this recommendation (ms)
 * @param size echoes the pool policy recommends now
 * @param windowMs length of the window (ms); 0 keeps only the newest recommendation
 */
export function stabilisePool(
  window: readonly PoolRecommendation[],
  at: number,
  size: number,
  windowMs: number,
): PoolWindowResult {
  const cutoff = at - windowMs;
  const next = [...window.filter((p) => p.at > cutoff), { at, size }];
  return { window: next, size: Math.max(...next.map((p) => p.size)) };
}
