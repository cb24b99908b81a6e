import type { ServiceSpec } from '../config/index.js';
import type { ResourceLimits } from '../agent/index.js';
import {
  hourOf,
  hourSamples,
  percentilesOf,
  type ResolvedProfileOptions,
  type ServiceProfile,
} from '../telemetry/index.js';
import { limitsFor } from './instance-launch.js';
import type { InstanceRole } from './records.js';

const MIB = 1024 * 1024;
/** The smallest CPU limit the profile gives an echo or shadow, cores. */
export const PROFILE_MIN_CPU = 0.05;
/** The smallest memory limit (as `limitsFor`), bytes. */
const MIN_MEMORY = 32 * MIB;
/** Memory headroom over the hour's p95 resident memory: a memory limit below the working set kills. */
export const PROFILE_MEMORY_HEADROOM = 1.25;

/** How an instance was sized, and from what (recorded in its start decision). */
export interface ProfileSizing {
  limits: ResourceLimits;
  /** `profile`: the hour's percentiles; `fixed-fraction`: the spec's fractions; `spec`: a serving instance. */
  source: 'profile' | 'fixed-fraction' | 'spec';
  /** In words: which percentiles of which hour, or why the fixed fractions were used. */
  detail: string;
  hour: number;
  /** Samples the profile holds for the hour. */
  samples: number;
}

const clamp = (v: number, lo: number, hi: number | undefined): number => Math.max(lo, Math.min(hi ?? v, v));

/**
 * The start limits of an instance (seed 001: a shadow profile sizes new echoes and shadows). A serving
 * instance gets the spec's limits. An echo or shadow gets the spec's fixed fractions
 * ({@link limitsFor}) until the profile holds `minSamples` samples for the current hour of the day;
 * from then on:
 * - an echo gets the hour's p50 CPU of one serving instance (what it needs the moment it is promoted
 *   at typical load; it grows with its primary afterwards) and the hour's p95 memory × 1.25;
 * - a shadow, which sees `shadow.sample` of all traffic, gets the hour's p95 CPU × sample × the
 *   serving count, and the same memory as an echo.
 * The spec's limits stay the upper bounds (a shadow without a CPU limit in the spec: one core), 0.05
 * core and 32 MiB the lower ones. Without limits support nothing is limited.
 */
export function sizeFromProfile(
  spec: ServiceSpec,
  role: InstanceRole,
  supported: boolean,
  profile: ServiceProfile | undefined,
  options: ResolvedProfileOptions,
  servingCount: number,
  now: number,
): ProfileSizing {
  const hour = hourOf(now);
  const samples = profile ? hourSamples(profile, hour) : 0;
  const fixed = limitsFor(spec, role, supported);
  if (role === 'primary')
    return { limits: fixed, source: 'spec', detail: "the spec's limits", hour, samples };
  const h = profile?.hours[hour];
  const cpu = percentilesOf(h?.cpu);
  const memory = percentilesOf(h?.memory);
  if (!supported || !cpu || samples < options.minSamples)
    return {
      limits: fixed,
      source: 'fixed-fraction',
      detail: supported
        ? `the spec's fixed fractions: the profile has ${samples} of the ${options.minSamples} samples it needs for hour ${hour} (UTC)`
        : 'no limits on this host',
      hour,
      samples,
    };
  const limits: ResourceLimits = {};
  const maxCpu = spec.resources.cpu ?? (role === 'shadow' ? 1 : undefined);
  const wantCpu = role === 'shadow' ? cpu.p95 * spec.shadow.sample * Math.max(1, servingCount) : cpu.p50;
  if (maxCpu !== undefined) limits.cpu = clamp(wantCpu, PROFILE_MIN_CPU, maxCpu);
  if (spec.resources.memory !== undefined && memory)
    limits.memoryBytes = Math.round(
      clamp(memory.p95 * PROFILE_MEMORY_HEADROOM, MIN_MEMORY, spec.resources.memory),
    );
  else if (fixed.memoryBytes !== undefined) limits.memoryBytes = fixed.memoryBytes;
  const cpuWhat = role === 'shadow' ? `p95 CPU × ${spec.shadow.sample} × ${servingCount}` : 'p50 CPU';
  return {
    limits,
    source: 'profile',
    detail: `the profile's ${cpuWhat} and p95 memory × ${PROFILE_MEMORY_HEADROOM} for hour ${hour} (UTC, ${samples} samples), within the spec's limits`,
    hour,
    samples,
  };
}

/**
 * The smallest size the vertical sizer may shrink an echo to, as a fraction of the spec's limits: the
 * profile's start size for the hour when it has enough data (else the spec's `echoFraction`).
 */
export function echoFloorFraction(spec: ServiceSpec, sizing: ProfileSizing): number {
  const { cpu, memory, echoFraction } = spec.resources;
  if (sizing.source !== 'profile' || cpu === undefined || memory === undefined) return echoFraction;
  const c = sizing.limits.cpu !== undefined ? sizing.limits.cpu / cpu : 0;
  const m = sizing.limits.memoryBytes !== undefined ? sizing.limits.memoryBytes / memory : 0;
  return Math.min(1, Math.max(c, m, 0.01));
}
