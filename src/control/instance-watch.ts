import type { ServiceSpec } from '../config/index.js';
import {
  ActiveHealthMonitor,
  LivenessWatch,
  probe,
  type FailureVerdict,
  type HealthVerdict,
  type ProbeTarget,
} from '../health/index.js';
import { applyTransition, type RefusalReporter } from './instance-transition.js';
import type { InstanceRecord } from './records.js';

/** What answers for an instance: the spec's health check, else a TCP connect to its first port. */
export function probeTargetFor(spec: ServiceSpec, rec: InstanceRecord): ProbeTarget | undefined {
  const health = spec.health;
  const portOf = (name: string | undefined): number =>
    rec.ports[name ?? Object.keys(rec.ports)[0] ?? ''] ?? 0;
  if (health?.http)
    return { kind: 'http', host: '127.0.0.1', port: portOf(health.http.port), path: health.http.path };
  if (health?.tcp) return { kind: 'tcp', host: '127.0.0.1', port: portOf(health.tcp.port) };
  if (health?.exec)
    return { kind: 'exec', argv: health.exec, cwd: rec.stateDir, env: { UNDERSTUDY_INSTANCE: rec.id } };
  if (Object.keys(rec.ports).length > 0) return { kind: 'tcp', host: '127.0.0.1', port: portOf(undefined) };
  return undefined;
}

/**
 * Watches one instance until `signal` aborts: the spec's active health check (verdicts to `onHealth`)
 * and the liveness heartbeat with phi-accrual hang detection (a verdict to `onHang`, for this pid only).
 */
export function watchInstance(
  spec: ServiceSpec,
  rec: InstanceRecord,
  signal: AbortSignal,
  handlers: { onHealth: (v: HealthVerdict) => void; onHang: (v: FailureVerdict) => void },
): void {
  const target = probeTargetFor(spec, rec);
  const health = spec.health;
  if (health && target) {
    ActiveHealthMonitor.start(
      {
        target,
        intervalMs: health.interval,
        timeoutMs: health.timeout,
        failureThreshold: health.failureThreshold,
        startPeriodMs: health.startPeriod,
      },
      handlers.onHealth,
      signal,
    );
  }
  const pid = rec.pid;
  if (pid === undefined) return;
  LivenessWatch.start(
    {
      pid,
      ...(target && target.kind !== 'exec' ? { target } : {}),
      intervalMs: spec.failover.heartbeat,
      phiThreshold: spec.failover.phiThreshold,
      acceptablePauseMs: spec.failover.acceptablePause,
    },
    (verdict) => {
      if (rec.pid === pid) handlers.onHang(verdict);
    },
    signal,
  );
}

/**
 * Resolves true once the instance answers its probe (and marks it running), false on exit, timeout, or
 * when it may not become running from its phase (reported to `report`).
 */
export async function waitReady(
  spec: ServiceSpec,
  rec: InstanceRecord,
  timeoutMs: number,
  report: RefusalReporter,
): Promise<boolean> {
  const target = probeTargetFor(spec, rec);
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (rec.phase === 'failed' || rec.phase === 'exited') return false;
    if (!target || (await probe(target, 200)).ok) return applyTransition(rec, 'ready', report);
    await new Promise((r) => setTimeout(r, 10));
  }
  return false;
}
