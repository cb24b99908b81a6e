import type { RestartSpec } from '../config/index.js';
import type { DecisionLog } from './decision-log.js';
import { describeExit } from './reconcile.js';
import { moveInstance } from './instance-transition.js';
import type { InstanceRecord } from './records.js';
import { nextRestartDelay, type Agent, type InstanceExit } from '../agent/index.js';

/**
 * Delay before restarting an exited instance under the service's restart policy, or undefined to give up.
 * `forced` marks an exit the control plane caused itself (failed health checks): a failure whatever the
 * exit code.
 */
export function restartDelay(
  spec: RestartSpec,
  restarts: readonly number[],
  exit: InstanceExit,
  now: number,
  forced = false,
): number | undefined {
  const policy = {
    mode: spec.policy,
    maxRestarts: spec.maxRestarts,
    windowMs: spec.window,
    backoff: { initialMs: spec.backoff, maxMs: spec.maxBackoff, multiplier: 2 },
  };
  return nextRestartDelay(policy, restarts, forced ? { code: 1, signal: exit.signal } : exit, now);
}

/**
 * An instance exited and no failover took over: applies the restart policy to its record (phase
 * `exited` with `nextRestartAt`, or `failed`), records the decision, and returns the restart delay
 * (undefined when the policy gives up).
 */
export function applyRestartPolicy(
  rec: InstanceRecord,
  exit: InstanceExit,
  spec: RestartSpec | undefined,
  forced: boolean,
  now: number,
  decisions: DecisionLog,
): number | undefined {
  const delay = spec ? restartDelay(spec, rec.restarts, exit, now, forced) : undefined;
  rec.restarts = rec.restarts.filter((t) => spec && now - t < spec.window);
  if (delay === undefined) {
    moveInstance(decisions, rec, 'fail');
    decisions.record({
      kind: 'give-up',
      service: rec.service,
      instance: rec.id,
      what: `give up on ${rec.role} ${rec.id}`,
      why: `${rec.role} exited (${describeExit(rec)}) and restart policy '${spec?.policy ?? 'none'}' allows no more restarts (${rec.restarts.length} in the window)`,
      inputs: { exit, restartsInWindow: rec.restarts.length, policy: spec },
      outcome: { status: 'recorded' },
    });
    return undefined;
  }
  if (!moveInstance(decisions, rec, 'exit')) return undefined;
  rec.nextRestartAt = now + delay;
  decisions.record({
    kind: 'exited',
    service: rec.service,
    instance: rec.id,
    what: `${rec.role} ${rec.id} exited (${describeExit(rec)})`,
    why: forced ? 'stopped after failing health or liveness checks' : 'process exit observed by the runtime',
    inputs: { exit, detectedAt: now, detectionMs: now - exit.at, restartInMs: delay },
    outcome: { status: 'recorded' },
  });
  return delay;
}

/**
 * A deposed (fenced) primary comes back as an echo after its restart delay: sets the record to `exited`
 * with `nextRestartAt` (reconcile then provisions it as an echo), or `failed` when the policy gives up.
 * Returns the delay.
 */
export function scheduleRejoin(
  rec: InstanceRecord,
  spec: RestartSpec,
  now: number,
  decisions: DecisionLog,
): number | undefined {
  const delay = restartDelay(
    spec,
    rec.restarts,
    rec.lastExit ?? { code: null, signal: 'SIGKILL', at: now },
    now,
    true,
  );
  if (delay === undefined) {
    moveInstance(decisions, rec, 'fail');
    return undefined;
  }
  if (!moveInstance(decisions, rec, 'exit')) return undefined;
  rec.nextRestartAt = now + delay;
  return delay;
}

/**
 * Stops an instance that failed its health or liveness checks (SIGTERM then SIGKILL, or the given
 * signal at once), as a recorded decision; its exit then follows the restart policy as a failure.
 */
export function killForRestart(
  agent: Agent,
  decisions: DecisionLog,
  rec: InstanceRecord,
  o: {
    kind: 'unhealthy' | 'hang';
    why: string;
    inputs: Record<string, unknown>;
    graceMs: number;
    signal?: NodeJS.Signals;
  },
): void {
  const decision = decisions.record({
    kind: o.kind,
    service: rec.service,
    instance: rec.id,
    what: `restart ${o.kind} ${rec.role} ${rec.id}`,
    why: o.why,
    inputs: o.inputs,
    outcome: { status: 'pending' },
  });
  const signal = o.signal;
  const done = signal ? agent.kill(rec.id, signal) : agent.stop(rec.id, { graceMs: o.graceMs });
  done
    .then(() => decisions.settle(decision, 'ok', 'stopped; restart follows the restart policy'))
    .catch((err: unknown) => decisions.settle(decision, 'failed', `${(err as Error).message}`));
}
