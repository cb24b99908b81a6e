import type { Decision } from './decision.js';
import { fmtMs } from './guards.js';

/** Options of {@link decideVertical}. */
export interface VerticalPolicyOptions {
  /** Full size of an instance: CPU in millicores. Required. */
  fullCpuMillis: number;
  /** Full size of an instance: memory in MiB. Required. */
  fullMemoryMiB: number;
  /** Size an echo starts at, as a fraction of full (seed 000: minimal). @default 0.1 */
  echoMinFraction?: number;
  /** Primary utilisation above which echoes start to grow; they reach full size at 100 %. @default 0.5 */
  echoGrowFrom?: number;
  /** A serving instance above this CPU utilisation grows by `step`. @default 0.85 */
  highUtilization?: number;
  /** A serving instance below this CPU utilisation shrinks by `step`. @default 0.3 */
  lowUtilization?: number;
  /** Multiplicative resize step of serving instances. @default 1.5 */
  step?: number;
  /** Smallest serving size as a fraction of full. @default 0.25 */
  servingMinFraction?: number;
  /** Largest serving size as a fraction of full. @default 2 */
  servingMaxFraction?: number;
  /** Minimum time between two resizes of one instance. @default 120000 */
  cooldownMs?: number;
  /** Changes smaller than this fraction of the current size are not worth an action. @default 0.1 */
  minChange?: number;
}

/** {@link VerticalPolicyOptions} with defaults applied. */
export type ResolvedVerticalPolicyOptions = Required<VerticalPolicyOptions>;

/** Applies the defaults of {@link VerticalPolicyOptions} once. */
export function resolveVerticalPolicyOptions(o: VerticalPolicyOptions): ResolvedVerticalPolicyOptions {
  if (!(o.fullCpuMillis > 0) || !(o.fullMemoryMiB > 0))
    throw new RangeError('fullCpuMillis and fullMemoryMiB must be > 0');
  return {
    fullCpuMillis: o.fullCpuMillis,
    fullMemoryMiB: o.fullMemoryMiB,
    echoMinFraction: o.echoMinFraction ?? 0.1,
    echoGrowFrom: o.echoGrowFrom ?? 0.5,
    highUtilization: o.highUtilization ?? 0.85,
    lowUtilization: o.lowUtilization ?? 0.3,
    step: o.step ?? 1.5,
    servingMinFraction: o.servingMinFraction ?? 0.25,
    servingMaxFraction: o.servingMaxFraction ?? 2,
    cooldownMs: o.cooldownMs ?? 120_000,
    minChange: o.minChange ?? 0.1,
  };
}

/** One instance as the vertical policy sees it. */
export interface VerticalInstance {
  id: string;
  role: 'primary' | 'echo';
  cpuMillis: number;
  memoryMiB: number;
  /** CPU use / CPU limit in [0, 1] (primaries). */
  cpuUtilization: number;
  /** Memory use / memory limit in [0, 1] (primaries). */
  memoryUtilization: number;
  /** Time of its last resize. */
  lastResizeAt?: number;
}

/**
 * Echo size as a fraction of full (seed 000): `echoMinFraction` while the primary is below
 * `echoGrowFrom`, rising linearly to 1 at 100 % utilisation, so that a promoted echo is already
 * large when the primary is busy.
 */
export function echoSizeFraction(o: ResolvedVerticalPolicyOptions, primaryUtilization: number): number {
  const u = Number.isFinite(primaryUtilization) ? Math.min(1, Math.max(0, primaryUtilization)) : 0;
  const grow = o.echoGrowFrom >= 1 ? 0 : Math.max(0, (u - o.echoGrowFrom) / (1 - o.echoGrowFrom));
  return o.echoMinFraction + (1 - o.echoMinFraction) * grow;
}

/**
 * Resizes CPU and memory limits: echoes follow {@link echoSizeFraction} of the busiest primary's
 * utilisation; primaries grow by `step` above `highUtilization` (CPU) or when memory passes 90 %,
 * and shrink below `lowUtilization`, within bounds, one resize per `cooldownMs`. Pure.
 */
export function decideVertical(
  o: ResolvedVerticalPolicyOptions,
  instances: readonly VerticalInstance[],
  now: number,
): Decision[] {
  const out: Decision[] = [];
  let primaryUtil = 0;
  for (const i of instances)
    if (i.role === 'primary') primaryUtil = Math.max(primaryUtil, i.cpuUtilization, i.memoryUtilization);
  for (const i of instances) {
    if (i.lastResizeAt !== undefined && now - i.lastResizeAt < o.cooldownMs) continue;
    let cpu = i.cpuMillis;
    let mem = i.memoryMiB;
    let why: string;
    if (i.role === 'echo') {
      const f = echoSizeFraction(o, primaryUtil);
      cpu = Math.round(o.fullCpuMillis * f);
      mem = Math.round(o.fullMemoryMiB * f);
      why = `echo sized to ${Math.round(f * 100)} % of full: primary utilisation ${(primaryUtil * 100).toFixed(0)} %`;
    } else {
      const minCpu = o.fullCpuMillis * o.servingMinFraction;
      const maxCpu = o.fullCpuMillis * o.servingMaxFraction;
      if (i.cpuUtilization > o.highUtilization) cpu = Math.min(maxCpu, cpu * o.step);
      else if (i.cpuUtilization < o.lowUtilization) cpu = Math.max(minCpu, cpu / o.step);
      if (i.memoryUtilization > 0.9) mem = Math.min(o.fullMemoryMiB * o.servingMaxFraction, mem * o.step);
      cpu = Math.round(cpu);
      mem = Math.round(mem);
      why = `CPU ${(i.cpuUtilization * 100).toFixed(0)} %, memory ${(i.memoryUtilization * 100).toFixed(0)} % (grow above ${o.highUtilization * 100} %, shrink below ${o.lowUtilization * 100} %, cooldown ${fmtMs(o.cooldownMs)})`;
    }
    const cpuChange = Math.abs(cpu - i.cpuMillis) / Math.max(1, i.cpuMillis);
    const memChange = Math.abs(mem - i.memoryMiB) / Math.max(1, i.memoryMiB);
    if (cpuChange < o.minChange && memChange < o.minChange) continue;
    out.push({
      kind: 'resize',
      at: now,
      from: i.cpuMillis,
      to: cpu,
      applied: true,
      instance: i.id,
      reason: `${i.role} ${i.id}: ${i.cpuMillis}m/${i.memoryMiB}MiB → ${cpu}m/${mem}MiB; ${why}`,
      inputs: {
        utilization: i.role === 'echo' ? primaryUtil : i.cpuUtilization,
        memoryMiB: mem,
        fromMemoryMiB: i.memoryMiB,
      },
    });
  }
  return out;
}
