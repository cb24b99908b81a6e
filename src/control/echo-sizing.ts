import type { ServiceSpec } from '../config/index.js';
import { decideVertical, resolveVerticalPolicyOptions } from '../policy/index.js';
import type { ResourceLimits, Runtime } from '../runtime/index.js';
import type { DecisionLog } from './decision-log.js';
import type { InstanceRecord } from './records.js';

const MIB = 1024 * 1024;
/** Minimum time between two resizes of one echo, ms. */
const ECHO_RESIZE_COOLDOWN_MS = 10_000;

/**
 * Seed 000: echoes start minimal (`resources.echoFraction` of the serving limits) and grow with their
 * primary's utilisation, so a promoted echo is already large when the primary is busy. Applies the
 * vertical policy's echo decisions through the runtime's cgroups, each recorded as a decision.
 * Serving instances are not resized here (yet). Returns the records it resized.
 */
export async function sizeEchoes(
  spec: ServiceSpec,
  instances: readonly InstanceRecord[],
  primaryUtilization: number,
  runtime: Runtime,
  decisions: DecisionLog,
  lastResize: Map<string, number>,
  now: number,
): Promise<InstanceRecord[]> {
  const { cpu, memory, echoFraction } = spec.resources;
  if (cpu === undefined || memory === undefined || !runtime.limitsSupport().supported) return [];
  const options = resolveVerticalPolicyOptions({
    fullCpuMillis: cpu * 1000,
    fullMemoryMiB: memory / MIB,
    echoMinFraction: echoFraction,
    cooldownMs: ECHO_RESIZE_COOLDOWN_MS,
  });
  const echoes = instances.filter(
    (i) => i.role === 'echo' && i.phase === 'running' && runtime.get(i.id) !== undefined,
  );
  const view = [
    {
      id: '(primary)',
      role: 'primary' as const,
      cpuMillis: cpu * 1000,
      memoryMiB: memory / MIB,
      cpuUtilization: primaryUtilization,
      memoryUtilization: 0,
      lastResizeAt: now,
    },
    ...echoes.map((e) => ({
      id: e.id,
      role: 'echo' as const,
      cpuMillis: Math.round((e.limits.cpu ?? cpu * echoFraction) * 1000),
      memoryMiB: Math.round((e.limits.memoryBytes ?? memory * echoFraction) / MIB),
      cpuUtilization: 0,
      memoryUtilization: 0,
      ...(lastResize.has(e.id) ? { lastResizeAt: lastResize.get(e.id) ?? 0 } : {}),
    })),
  ];
  const resized: InstanceRecord[] = [];
  for (const d of decideVertical(options, view, now)) {
    const rec = echoes.find((e) => e.id === d.instance);
    if (!rec) continue;
    const limits: ResourceLimits = {
      cpu: d.to / 1000,
      memoryBytes: Math.max(32 * MIB, Math.round(Number(d.inputs.memoryMiB) * MIB)),
    };
    const decision = decisions.record({
      kind: 'resize',
      service: spec.name,
      instance: rec.id,
      what: `resize echo ${rec.id} to ${limits.cpu?.toFixed(2)} CPU / ${Math.round((limits.memoryBytes ?? 0) / MIB)} MiB`,
      why: d.reason,
      inputs: { primaryUtilization, from: rec.limits, to: limits },
      outcome: 'pending',
    });
    lastResize.set(rec.id, now);
    try {
      await runtime.setResources(rec.id, limits);
      rec.limits = limits;
      resized.push(rec);
      decisions.settle(decision, 'ok');
    } catch (err) {
      decisions.settle(decision, `failed: ${(err as Error).message}`);
    }
  }
  return resized;
}
