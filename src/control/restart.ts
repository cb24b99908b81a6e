import type { RestartSpec } from '../config/index.js';
import { nextRestartDelay, type InstanceExit } from '../runtime/index.js';

/**
 * Delay before restarting an exited instance under the service's restart policy, or undefined to give up.
 * `forced` marks an exit the control plane caused itself (failed health checks): a failure whatever the
 * exit code.
 */
export function restartDelay(spec: RestartSpec, restarts: readonly number[], exit: InstanceExit, now: number, forced = false): number | undefined {
  const policy = {
    mode: spec.policy,
    maxRestarts: spec.maxRestarts,
    windowMs: spec.window,
    backoff: { initialMs: spec.backoff, maxMs: spec.maxBackoff, multiplier: 2 },
  };
  return nextRestartDelay(policy, restarts, forced ? { code: 1, signal: exit.signal } : exit, now);
}
