import type { ServiceSpec } from '../config/index.js';
import type { Decision, InstanceRecord, InstanceRole } from './records.js';

/** An action the reconciler asks for; the control plane executes it and records it as a decision. */
export type Action =
  | { type: 'start'; service: string; role: InstanceRole; slot: number; why: string }
  | { type: 'restart'; instance: string; service: string; why: string; inputs: Record<string, unknown> }
  | { type: 'give-up'; instance: string; service: string; why: string; inputs: Record<string, unknown> }
  | { type: 'stop'; instance: string; service: string; why: string };

/**
 * Desired versus actual, as a pure function: which instances to start, restart, give up on or stop.
 * `exited` instances are restarted once `nextRestartAt` has come; the caller sets `nextRestartAt`
 * from the restart policy when it sees the exit (or marks the record `failed`).
 */
export function reconcile(
  services: readonly ServiceSpec[],
  instances: readonly InstanceRecord[],
  now: number,
): Action[] {
  const actions: Action[] = [];
  const wanted = new Map(services.map((s) => [s.name, s]));
  for (const inst of instances) {
    const spec = wanted.get(inst.service);
    if (inst.phase === 'stopped' || inst.phase === 'failed') continue;
    if (!spec) {
      actions.push({
        type: 'stop',
        instance: inst.id,
        service: inst.service,
        why: `service '${inst.service}' is no longer in the spec`,
      });
      continue;
    }
    if (inst.slot > spec.echo.count) {
      actions.push({
        type: 'stop',
        instance: inst.id,
        service: inst.service,
        why: `slot ${inst.slot} exceeds echo.count ${spec.echo.count}`,
      });
      continue;
    }
    if (inst.phase === 'exited' && inst.nextRestartAt !== undefined && inst.nextRestartAt <= now) {
      actions.push({
        type: 'restart',
        instance: inst.id,
        service: inst.service,
        why: `${inst.role} exited (${describeExit(inst)}); restart policy '${spec.restart.policy}' allows restart ${inst.restarts.length + 1} of ${spec.restart.maxRestarts} in ${spec.restart.window} ms`,
        inputs: { exit: inst.lastExit, restartsInWindow: inst.restarts.length, policy: spec.restart },
      });
    }
  }
  for (const spec of services) {
    const taken = new Set(
      instances.filter((i) => i.service === spec.name && i.phase !== 'stopped').map((i) => i.slot),
    );
    for (let slot = 0; slot <= spec.echo.count; slot++) {
      if (taken.has(slot)) continue;
      const role: InstanceRole = slot === 0 ? 'primary' : 'echo';
      actions.push({
        type: 'start',
        service: spec.name,
        role,
        slot,
        why:
          slot === 0
            ? `service '${spec.name}' has no primary`
            : `service '${spec.name}' wants ${spec.echo.count} echo(es); slot ${slot} is empty`,
      });
    }
  }
  return actions;
}

/** Human description of an instance's last exit. */
export function describeExit(inst: Pick<InstanceRecord, 'lastExit'>): string {
  const e = inst.lastExit;
  if (!e) return 'unknown exit';
  return e.signal ? `killed by ${e.signal}` : `exit code ${e.code ?? '?'}`;
}

/** The decision recording an action before it is executed (outcome `pending`). */
export function actionDecision(action: Action, rec: InstanceRecord): Omit<Decision, 'seq' | 'at'> {
  const base = { service: action.service, instance: rec.id, why: action.why, outcome: 'pending' };
  switch (action.type) {
    case 'start':
      return {
        ...base,
        kind: 'start',
        what: `start ${action.role} ${rec.id}`,
        inputs: { slot: action.slot, role: action.role },
      };
    case 'restart':
      return { ...base, kind: 'restart', what: `restart ${rec.role} ${rec.id}`, inputs: action.inputs };
    case 'give-up':
    case 'stop':
      return { ...base, kind: action.type, what: `stop ${rec.role} ${rec.id}`, inputs: {} };
  }
}
