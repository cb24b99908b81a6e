import type { ServiceSpec } from '../config/index.js';
import { decideVertical, resolveVerticalPolicyOptions, type VerticalInstance } from '../policy/index.js';
import type { AgentRegistry, ResourceLimits } from '../agent/index.js';
import type { DecisionLog } from './decision-log.js';
import type { InstanceRecord } from './records.js';

const MIB = 1024 * 1024;
/** Minimum time between two resizes of one echo, ms. */
const ECHO_RESIZE_COOLDOWN_MS = 10_000;
/** Minimum time between two resizes of one serving instance, ms. */
const SERVING_RESIZE_COOLDOWN_MS = 60_000;
/** A serving instance is resized only once it has run this long, ms. */
const SERVING_SETTLE_MS = 5_000;

/** CPU and memory use of a serving instance as fractions of its limits. */
export interface ServingUsage {
  cpuUtilization: number;
  memoryUtilization: number;
}

/**
 * Vertical sizing through the runtime's cgroups, each resize recorded as a decision:
 * - Seed 000: echoes start minimal (`resources.echoFraction` of the serving limits) and grow with their
 *   busiest primary's utilisation above 50 % (above `scaling.target` for the warm pool of a horizontally
 *   scaled service), so a promoted echo is already large when the primary is busy.
 * - Seed 002 (scaling granularity: the CPU and memory of existing instances): a serving instance grows
 *   by 1.5× above 85 % CPU (or 90 % memory) and shrinks below 30 % CPU, between ¼ and 2× the spec's
 *   limits — only for a service whose serving count is fixed (`scaling.min == max`), so that vertical
 *   and horizontal scaling never act on the same signal (the Kubernetes VPA/HPA rule).
 * With `echoFloor` (a fraction of the spec's limits: the profile's size for the hour, see
 * `echoFloorFraction`) echoes start from and shrink to that instead of `echoFraction`.
 * Returns the records it resized.
 */
export async function sizeInstances(
  spec: ServiceSpec,
  instances: readonly InstanceRecord[],
  usage: ReadonlyMap<string, ServingUsage>,
  agents: AgentRegistry,
  decisions: DecisionLog,
  lastResize: Map<string, number>,
  now: number,
  echoFloor?: number,
): Promise<InstanceRecord[]> {
  const { cpu, memory } = spec.resources;
  // Seed 001: with a profile that has enough data, echoes are not shrunk below its size for the hour.
  const echoFraction = echoFloor ?? spec.resources.echoFraction;
  if (cpu === undefined || memory === undefined) return [];
  const supported = await Promise.all(agents.all().map(async (a) => (await a.limitsSupport()).supported));
  if (!supported.some(Boolean)) return [];
  const known = new Set<string>();
  for (const i of instances)
    if (i.phase === 'running' && (await agents.of(i).instance(i.id)) !== undefined) known.add(i.id);
  const live = (i: InstanceRecord): boolean => known.has(i.id);
  const echoes = instances.filter((i) => i.role === 'echo' && live(i));
  // A process just started is not judged on its start-up: its first samples average in the idle start.
  const settled = (i: InstanceRecord): boolean => now - (i.startedAt ?? 0) >= SERVING_SETTLE_MS;
  const serving = instances.filter((i) => i.role === 'primary' && live(i) && usage.has(i.id));
  const view = (i: InstanceRecord, role: 'primary' | 'echo'): VerticalInstance => {
    const u = usage.get(i.id);
    return {
      id: i.id,
      role,
      cpuMillis: Math.round((i.limits.cpu ?? cpu * (role === 'echo' ? echoFraction : 1)) * 1000),
      memoryMiB: Math.round((i.limits.memoryBytes ?? memory * (role === 'echo' ? echoFraction : 1)) / MIB),
      cpuUtilization: u?.cpuUtilization ?? 0,
      memoryUtilization: u?.memoryUtilization ?? 0,
      ...(lastResize.has(i.id) ? { lastResizeAt: lastResize.get(i.id) ?? 0 } : {}),
    };
  };
  const all = [...serving.map((i) => view(i, 'primary')), ...echoes.map((i) => view(i, 'echo'))];
  // The echoes of a horizontally scaled service are its warm pool: each stands in for one more serving
  // instance, needed once the serving set passes its target utilisation, so they grow from there (as the
  // simulator prices them, src/sim/scenario.ts); an unscaled service's echo grows from 50 % (seed 000).
  const scaled = spec.scaling.max > spec.scaling.min;
  const base = {
    fullCpuMillis: cpu * 1000,
    fullMemoryMiB: memory / MIB,
    echoMinFraction: echoFraction,
    ...(scaled ? { echoGrowFrom: spec.scaling.target } : {}),
  };
  const wanted = decideVertical(
    resolveVerticalPolicyOptions({ ...base, cooldownMs: ECHO_RESIZE_COOLDOWN_MS }),
    all,
    now,
  ).filter((d) => echoes.some((e) => e.id === d.instance));
  if (spec.scaling.min === spec.scaling.max)
    wanted.push(
      ...decideVertical(
        resolveVerticalPolicyOptions({ ...base, cooldownMs: SERVING_RESIZE_COOLDOWN_MS }),
        all,
        now,
      ).filter((d) => serving.some((p) => p.id === d.instance && settled(p))),
    );
  const resized: InstanceRecord[] = [];
  for (const d of wanted) {
    const rec = instances.find((e) => e.id === d.instance);
    if (!rec) continue;
    const limits: ResourceLimits = {
      cpu: d.to / 1000,
      memoryBytes: Math.max(32 * MIB, Math.round(Number(d.inputs.memoryMiB) * MIB)),
    };
    const decision = decisions.record({
      kind: 'resize',
      service: spec.name,
      instance: rec.id,
      what: `resize ${rec.role === 'echo' ? 'echo' : 'serving instance'} ${rec.id} to ${limits.cpu?.toFixed(2)} CPU / ${Math.round((limits.memoryBytes ?? 0) / MIB)} MiB`,
      why: d.reason,
      inputs: { utilization: d.inputs.utilization, from: rec.limits, to: limits },
      outcome: { status: 'pending' },
    });
    lastResize.set(rec.id, now);
    try {
      await agents.of(rec).setResources(rec.id, limits);
      rec.limits = limits;
      resized.push(rec);
      decisions.settle(decision, 'ok');
    } catch (err) {
      decisions.settle(decision, 'failed', `${(err as Error).message}`);
    }
  }
  return resized;
}
