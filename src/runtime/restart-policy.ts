import type { InstanceExit } from './runtime.js';

/**
 * When an exited instance is started again. Pure data; {@link nextRestartDelay} applies it.
 * Resolve user options once with {@link resolveRestartPolicy}.
 */
export interface RestartPolicy {
  /** `always`: restart after any exit; `on-failure`: only after a non-zero code or a signal; `never`. */
  mode: 'always' | 'on-failure' | 'never';
  /** Give up once this many restarts happened within `windowMs`. */
  maxRestarts: number;
  /** Sliding window, in ms, over which restarts are counted (older restarts are forgiven). */
  windowMs: number;
  backoff: {
    /** Delay before the first restart in the window, in ms. */
    initialMs: number;
    /** Upper bound of the delay, in ms. */
    maxMs: number;
    /** Growth factor per restart already in the window. */
    multiplier: number;
  };
}

/** User-facing form of {@link RestartPolicy}: every field optional. */
export interface RestartPolicyOptions {
  /** @default 'on-failure' */
  mode?: RestartPolicy['mode'];
  /** @default 5 */
  maxRestarts?: number;
  /** @default 60000 */
  windowMs?: number;
  backoff?: {
    /** @default 100 */
    initialMs?: number;
    /** @default 10000 */
    maxMs?: number;
    /** @default 2 */
    multiplier?: number;
  };
}

/** Applies the defaults of {@link RestartPolicyOptions} once. */
export function resolveRestartPolicy(options: RestartPolicyOptions = {}): RestartPolicy {
  return {
    mode: options.mode ?? 'on-failure',
    maxRestarts: options.maxRestarts ?? 5,
    windowMs: options.windowMs ?? 60_000,
    backoff: {
      initialMs: options.backoff?.initialMs ?? 100,
      maxMs: options.backoff?.maxMs ?? 10_000,
      multiplier: options.backoff?.multiplier ?? 2,
    },
  };
}

/** True when the exit counts as a failure: a non-zero code, or death by a signal. */
export function isFailedExit(exit: Pick<InstanceExit, 'code' | 'signal'>): boolean {
  return exit.signal !== null || exit.code !== 0;
}

/**
 * Decides whether and when to restart an instance that just exited.
 *
 * @param policy the resolved policy.
 * @param history times (ms) of the earlier restarts of this instance, any order; only those within
 *   `policy.windowMs` before `now` count.
 * @param exit how the instance exited (an exit the control loop caused itself, e.g. a stop, should not be
 *   passed here).
 * @param now the current time in ms, on the same clock as `history`.
 * @returns the delay in ms before restarting, or undefined to give up (policy says no, or too many recent
 *   restarts). The delay is `initialMs * multiplier^recent`, capped at `maxMs`.
 */
export function nextRestartDelay(
  policy: RestartPolicy,
  history: readonly number[],
  exit: Pick<InstanceExit, 'code' | 'signal'>,
  now: number,
): number | undefined {
  if (policy.mode === 'never') return undefined;
  if (policy.mode === 'on-failure' && !isFailedExit(exit)) return undefined;
  const since = now - policy.windowMs;
  const recent = history.filter((t) => t > since && t <= now).length;
  if (recent >= policy.maxRestarts) return undefined;
  const delay = policy.backoff.initialMs * Math.pow(policy.backoff.multiplier, recent);
  return Math.min(policy.backoff.maxMs, Math.max(0, delay));
}
