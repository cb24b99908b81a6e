import type { ServiceSpec } from '../config/index.js';
import type { ControlDecision, InstanceRecord, InstanceRole } from './records.js';

/** An action the reconciler asks for; the control plane executes it and records it as a decision. */
export type Action =
  | { type: 'start'; service: string; role: InstanceRole; slot: number; why: string }
  | { type: 'restart'; instance: string; service: string; why: string; inputs: Record<string, unknown> }
  | { type: 'give-up'; instance: string; service: string; why: string; inputs: Record<string, unknown> }
  | { type: 'stop'; instance: string; service: string; why: string };

/** How many instances of each role a service wants: the spec's, or the scaler's when it scales. */
export interface DesiredCounts {
  /** Serving instances (primaries). */
  serving: number;
  /** Echoes (the warm pool of a scaled service). */
  echoes: number;
  shadows: number;
}

/** The counts a service's spec asks for before any scaling decision. */
export function specCounts(spec: ServiceSpec): DesiredCounts {
  return { serving: spec.scaling.min, echoes: spec.echo.count, shadows: spec.shadow.count };
}

const ROLES: readonly InstanceRole[] = ['primary', 'echo', 'shadow'];

/**
 * Desired versus actual, as a pure function: which instances to start, restart, give up on or stop.
 * Each service wants `desired` primaries, echoes and shadows (default: {@link specCounts}); an instance
 * counts until it is `stopped` (a `failed` one keeps its place until an operator acts). A missing
 * instance is started in the lowest free slot; an extra one is stopped, not-running ones and the highest
 * slots first. `exited` instances are restarted once `nextRestartAt` has come; the caller sets
 * `nextRestartAt` from the restart policy when it sees the exit (or marks the record `failed`).
 */
export function reconcile(
  services: readonly ServiceSpec[],
  instances: readonly InstanceRecord[],
  now: number,
  desired: ReadonlyMap<string, DesiredCounts> = new Map(),
): Action[] {
  const actions: Action[] = [];
  const wanted = new Map(services.map((s) => [s.name, s]));
  const stopping = new Set<string>();
  for (const spec of services) {
    const want = desired.get(spec.name) ?? specCounts(spec);
    const mine = instances.filter((i) => i.service === spec.name && i.phase !== 'stopped');
    const used = new Set(mine.map((i) => i.slot));
    for (const role of ROLES) {
      const n = role === 'primary' ? want.serving : role === 'echo' ? want.echoes : want.shadows;
      const have = mine.filter((i) => i.role === role);
      for (let k = have.length; k < n; k++) {
        let slot = 0;
        while (used.has(slot)) slot++;
        used.add(slot);
        actions.push({
          type: 'start',
          service: spec.name,
          role,
          slot,
          why:
            role === 'primary' && have.length === 0
              ? `service '${spec.name}' has no primary`
              : `service '${spec.name}' wants ${n} ${role === 'primary' ? 'serving instance' : role}(s); it has ${k}`,
        });
      }
      const extra = have
        .filter((i) => i.phase !== 'failed')
        .sort((a, b) => Number(a.phase === 'running') - Number(b.phase === 'running') || b.slot - a.slot)
        .slice(0, Math.max(0, have.length - n));
      for (const inst of extra) {
        stopping.add(inst.id);
        actions.push({
          type: 'stop',
          instance: inst.id,
          service: inst.service,
          why: `service '${spec.name}' wants ${n} ${role === 'primary' ? 'serving instance' : role}(s); it has ${have.length}`,
        });
      }
    }
  }
  for (const inst of instances) {
    const spec = wanted.get(inst.service);
    if (inst.phase === 'stopped' || inst.phase === 'failed' || stopping.has(inst.id)) continue;
    if (!spec) {
      actions.push({
        type: 'stop',
        instance: inst.id,
        service: inst.service,
        why: `service '${inst.service}' is no longer in the spec`,
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
  return actions;
}

/** Human description of an instance's last exit. */
export function describeExit(inst: Pick<InstanceRecord, 'lastExit'>): string {
  const e = inst.lastExit;
  if (!e) return 'unknown exit';
  return e.signal ? `killed by ${e.signal}` : `exit code ${e.code ?? '?'}`;
}

/** The decision recording an action before it is executed (outcome `pending`). */
export function actionDecision(action: Action, rec: InstanceRecord): Omit<ControlDecision, 'seq' | 'at'> {
  const base = {
    service: action.service,
    instance: rec.id,
    why: action.why,
    outcome: { status: 'pending' as const },
  };
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
