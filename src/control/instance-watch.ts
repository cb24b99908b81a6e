import type { Agent, Clock } from '../agent/index.js';
import type { ServiceSpec } from '../config/index.js';
import type { FailureVerdict, HealthVerdict, ProbeTarget } from '../health/index.js';
import type { ControlTimeouts } from './control-plane-options.js';
import { applyTransition, type RefusalReporter } from './instance-transition.js';
import type { InstanceRecord } from './records.js';

/**
 * What answers for an instance: the spec's health check, else a TCP connect to its first port.
 * `address` is where the instance's host is reached (its agent's address).
 */
export function probeTargetFor(
  spec: ServiceSpec,
  rec: InstanceRecord,
  address: string,
): ProbeTarget | undefined {
  const health = spec.health;
  const portOf = (name: string | undefined): number =>
    rec.ports[name ?? Object.keys(rec.ports)[0] ?? ''] ?? 0;
  if (health?.http)
    return { kind: 'http', host: address, port: portOf(health.http.port), path: health.http.path };
  if (health?.tcp) return { kind: 'tcp', host: address, port: portOf(health.tcp.port) };
  if (health?.exec)
    return { kind: 'exec', argv: health.exec, cwd: rec.stateDir, env: { UNDERSTUDY_INSTANCE: rec.id } };
  if (Object.keys(rec.ports).length > 0) return { kind: 'tcp', host: address, port: portOf(undefined) };
  return undefined;
}

/**
 * Has the instance's agent watch it until `signal` aborts: the spec's active health check (verdicts to
 * `onHealth`) and the liveness heartbeat with phi-accrual hang detection (a verdict to `onHang`, for
 * this pid only).
 */
export function watchInstance(
  agent: Agent,
  spec: ServiceSpec,
  rec: InstanceRecord,
  signal: AbortSignal,
  handlers: { onHealth: (v: HealthVerdict) => void; onHang: (v: FailureVerdict) => void },
): void {
  const target = probeTargetFor(spec, rec, agent.address);
  const health = spec.health;
  const pid = rec.pid;
  // Without a pid there is nothing to heartbeat: the health check alone (if any).
  if (pid === undefined && !(health && target)) return;
  agent.watch(
    {
      instanceId: rec.id,
      ...(health && target
        ? {
            health: {
              target,
              intervalMs: health.interval,
              timeoutMs: health.timeout,
              failureThreshold: health.failureThreshold,
              startPeriodMs: health.startPeriod,
            },
          }
        : {}),
      ...(pid !== undefined
        ? {
            liveness: {
              pid,
              ...(target && target.kind !== 'exec' ? { target } : {}),
              intervalMs: spec.failover.heartbeat,
              phiThreshold: spec.failover.phiThreshold,
              acceptablePauseMs: spec.failover.acceptablePause,
            },
          }
        : {}),
    },
    {
      onHealth: handlers.onHealth,
      onHang: (verdict) => {
        if (rec.pid === pid) handlers.onHang(verdict);
      },
    },
    signal,
  );
}

/**
 * Resolves true once the instance answers its probe (and marks it running), false on exit, timeout, or
 * when it may not become running from its phase (reported to `report`).
 */
export async function waitReady(
  agent: Agent,
  clock: Clock,
  timeouts: Pick<ControlTimeouts, 'readyProbeMs' | 'readyPollMs'>,
  spec: ServiceSpec,
  rec: InstanceRecord,
  timeoutMs: number,
  report: RefusalReporter,
): Promise<boolean> {
  const target = probeTargetFor(spec, rec, agent.address);
  const deadline = clock.now() + timeoutMs;
  while (clock.now() < deadline) {
    if (rec.phase === 'failed' || rec.phase === 'exited') return false;
    if (!target || (await agent.probe(target, timeouts.readyProbeMs)).ok)
      return applyTransition(rec, 'ready', report);
    await clock.sleep(timeouts.readyPollMs);
  }
  return false;
}
