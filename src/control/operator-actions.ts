import type { LoadedSpec, ServiceSpec } from '../config/index.js';
import { ErrorCode, UnderstudyError } from '../errors/index.js';
import type { AgentRegistry } from '../agent/index.js';
import type { StateStore } from '../store/index.js';
import { recordError, type DecisionLog } from './decision-log.js';
import type { Failover } from './failover.js';
import type { InstanceRecords } from './instance-records.js';
import type { InstanceSupervisor } from './instance-supervisor.js';
import { moveInstance } from './instance-transition.js';
import type { ControlDecision } from './records.js';
import { applyReload, planReload, servicesToRewatch, type ReloadPlan } from './spec-reload.js';

/** What the operator actions of a {@link ControlPlane} work on. */
export interface OperatorActionDeps {
  records: InstanceRecords;
  supervisor: InstanceSupervisor;
  decisions: DecisionLog;
}

/**
 * Restarts one instance on request (API/CLI); recorded as a decision. A primary that serves alone (no
 * other running primary) is restarted only with `force`; without it, UNDERSTUDY_ERR_UNSAFE tells the
 * operator to switch over first. Thrown: UNDERSTUDY_ERR_NOT_FOUND for an unknown instance.
 */
export async function restartOnRequest(
  deps: OperatorActionDeps,
  id: string,
  reason: string,
  force: boolean,
): Promise<ControlDecision> {
  const rec = deps.records.get(id);
  if (!rec) throw new UnderstudyError(ErrorCode.NotFound, `no instance named '${id}'`);
  const alone =
    rec.role === 'primary' &&
    !deps.supervisor
      .allInstances()
      .some((i) => i.service === rec.service && i.role === 'primary' && i.id !== id && i.phase === 'running');
  if (alone && !force)
    throw new UnderstudyError(
      ErrorCode.Unsafe,
      `${id} is the only serving primary of '${rec.service}': restarting it interrupts the service. Run 'understudy switchover ${rec.service}' first (then restart ${id}, an echo by then), or pass --force to restart it in place`,
    );
  const decision = deps.decisions.record({
    kind: 'restart',
    service: rec.service,
    instance: id,
    what: `restart ${rec.role} ${id}`,
    why: `requested: ${reason}`,
    inputs: { requested: true, ...(alone ? { force: true } : {}) },
    outcome: { status: 'pending' },
  });
  await deps.supervisor.stopInstance(rec, 'stopped');
  await deps.supervisor.startInstance(rec, decision);
  return decision;
}

/**
 * Thrown unless `to` is an echo of `service` that can take over now (running, healthy, or a cold
 * standby): UNDERSTUDY_ERR_NOT_FOUND for an unknown target, UNDERSTUDY_ERR_FAILOVER for one that is
 * not a healthy echo of the service.
 */
export function checkFailoverTarget(
  records: InstanceRecords,
  failover: Failover,
  service: string,
  to: string,
): void {
  const rec = records.get(to);
  if (!rec || rec.service !== service)
    throw new UnderstudyError(ErrorCode.NotFound, `'${to}' is not an instance of '${service}'`);
  const ok = failover.candidates(service).some((c) => c.id === to) && rec.health?.healthy !== false;
  if (rec.role !== 'echo' || !ok) {
    const state = `${rec.role}, ${rec.phase}${rec.health && !rec.health.healthy ? `, failing: ${rec.health.detail}` : ''}`;
    throw new UnderstudyError(
      ErrorCode.Failover,
      `'${to}' cannot take over '${service}' (${state}); candidates: ${
        failover
          .candidates(service)
          .map((c) => c.id)
          .join(', ') || '(none)'
      }`,
    );
  }
}

/**
 * Applies a newly loaded spec file to `specs` (the running ones, loaded from `current`): the live
 * fields change, the changed services are stored again, the watches of services with new health
 * checks start again, and one `reload` decision is recorded. The caller reconciles afterwards.
 */
export async function applySpecReload(
  deps: OperatorActionDeps & { store: StateStore; scales: (service: string) => boolean },
  current: LoadedSpec,
  next: LoadedSpec,
): Promise<{ decision: ControlDecision; plan: ReloadPlan }> {
  const specs = current.spec.services;
  const plan = planReload(current.spec, next.spec, deps.scales);
  applyReload(specs, plan);
  for (const name of new Set(plan.live.map((c) => c.service))) {
    const spec = specs.find((s) => s.name === name);
    if (spec) await deps.store.put(`services/${name}`, JSON.stringify(spec));
  }
  // New health checks and hang detection: the watches of running instances start again with them.
  for (const name of servicesToRewatch(plan)) {
    const spec = deps.supervisor.specOf(name);
    for (const rec of deps.supervisor.instancesOf(name))
      if (rec.phase === 'starting' || rec.phase === 'running' || rec.phase === 'unhealthy')
        deps.supervisor.watch(spec, rec);
  }
  const restart = plan.needsRestart.map((c) => (c.service ? `${c.service}.${c.field}` : c.field));
  const live = plan.live.map(
    (c) => `${c.service}.${c.field}: ${JSON.stringify(c.from)} → ${JSON.stringify(c.to)}`,
  );
  const decision = deps.decisions.record({
    kind: 'reload',
    service: '',
    what: `reload ${next.file}: ${plan.live.length} change(s) applied${restart.length ? `, ${restart.length} need a restart of 'understudy up'` : ''}`,
    why: `SIGHUP${live.length ? `; applied ${live.join('; ')}` : ''}${restart.length ? `; not applied until a restart: ${restart.join(', ')}` : ''}`,
    inputs: { file: next.file, applied: plan.live, needsRestart: plan.needsRestart },
    outcome: { status: plan.live.length ? 'ok' : 'recorded' },
  });
  return { decision, plan };
}

/**
 * At close: every instance is stopped gracefully (the longest `stopGrace` of `specs`), its record
 * saved as stopped and a decision recorded.
 */
export async function stopEveryInstance(
  deps: OperatorActionDeps & { agents: AgentRegistry },
  specs: readonly ServiceSpec[],
): Promise<void> {
  const grace = Math.max(...specs.map((s) => s.stopGrace), 0);
  await Promise.all(deps.agents.all().map((a) => a.close({ graceMs: grace })));
  for (const rec of deps.records.values()) {
    if (rec.phase === 'stopped' || rec.phase === 'failed') continue;
    moveInstance(deps.decisions, rec, 'stop');
    // A deposed leader's writes are refused (UNDERSTUDY_ERR_NOT_LEADER): the rest of close still runs.
    await deps.supervisor
      .save(rec)
      .catch((err: unknown) => recordError(deps.decisions, `writing instance record ${rec.id}`, err));
    const what = `stop ${rec.role} ${rec.id}`;
    const base = { service: rec.service, instance: rec.id, inputs: {}, outcome: { status: 'ok' as const } };
    deps.decisions.record({ ...base, kind: 'stop', what, why: 'control plane shutting down' });
  }
}
