import {
  addToDigest,
  ageDigest,
  digestQuantile,
  emptyDigest,
  isDigest,
  type Digest,
} from './profile-digest.js';

/**
 * The resources a profile follows, per serving instance: CPU in cores, memory (resident) in bytes,
 * disk reads and writes and network traffic in bytes per second.
 */
export const PROFILE_RESOURCES = ['cpu', 'memory', 'diskRead', 'diskWrite', 'network'] as const;
export type ProfileResource = (typeof PROFILE_RESOURCES)[number];

/** One sample of one serving instance's use (absent fields: not measured this time). */
export type UsageSample = Partial<Record<ProfileResource, number>>;

/** What a service was seen to depend on (from /proc of its instances' processes). */
export interface ProfileDependencies {
  /** TCP ports it listens on. */
  listening: number[];
  /** Remote `address:port`s it keeps TCP connections to (loopback included). */
  connected: string[];
  /** Shared libraries mapped (paths). */
  libraries: string[];
  /** Regular files it keeps open (paths; sockets, pipes and /dev, /proc are left out). */
  files: string[];
  /** When dependencies were last observed, ms since the epoch (0: never). */
  observedAt: number;
}

/**
 * A service's profile (seed 001's shadow profile): the expected use of one serving instance per hour
 * of the day (UTC), as digests, and its observed dependencies. Plain JSON, stored under
 * `profiles/<service>`; `version` counts its stored refinements.
 */
export interface ServiceProfile {
  service: string;
  version: number;
  createdAt: number;
  updatedAt: number;
  /** The spec's limits it was seeded from (per serving instance; absent: unlimited). */
  spec: { cpu?: number; memoryBytes?: number };
  /** 24 entries, hour of day (UTC) → resource → digest of per-instance samples. */
  hours: Array<Partial<Record<ProfileResource, Digest>>>;
  dependencies: ProfileDependencies;
  /**
   * How long an instance takes to serve, ms: `cold` from its process start to joining the serving set,
   * `promotion` from the decision to promote a warm echo until it serves. Absent until first seen.
   */
  startup?: Partial<Record<'cold' | 'promotion', Digest>>;
}

/** Bounds of a profile. */
export interface ProfileOptions {
  /**
   * Samples of one hour of the day (CPU samples of serving instances, one a second each) the profile
   * needs before its percentiles replace the spec's fixed fractions: 300 is five minutes of one instance.
   * @default 300
   */
  minSamples?: number;
  /** Samples an hour's digest holds before it is aged (every count halved). @default 20000 */
  maxSamplesPerHour?: number;
  /** Entries kept in each dependency list (ports, connections, libraries, files); newest kept. @default 200 */
  maxDependencies?: number;
}

/** {@link ProfileOptions} with defaults applied. */
export type ResolvedProfileOptions = Required<ProfileOptions>;

/** Applies the defaults of {@link ProfileOptions}. */
export function resolveProfileOptions(o: ProfileOptions = {}): ResolvedProfileOptions {
  return {
    minSamples: o.minSamples ?? 300,
    maxSamplesPerHour: o.maxSamplesPerHour ?? 20_000,
    maxDependencies: o.maxDependencies ?? 200,
  };
}

/** The hour of day (UTC, 0..23) of a time. */
export function hourOf(at: number): number {
  return new Date(at).getUTCHours();
}

/** A new, empty profile seeded from the spec's limits. */
export function newProfile(service: string, spec: ServiceProfile['spec'], now: number): ServiceProfile {
  return {
    service,
    version: 0,
    createdAt: now,
    updatedAt: now,
    spec,
    hours: Array.from({ length: 24 }, () => ({})),
    dependencies: { listening: [], connected: [], libraries: [], files: [], observedAt: 0 },
  };
}

/** Counts one instance's usage sample into the hour it was taken (in place); ages a full hour. */
export function observeUsage(
  p: ServiceProfile,
  sample: UsageSample,
  at: number,
  options: ResolvedProfileOptions,
): void {
  const hour = p.hours[hourOf(at)];
  if (!hour) return;
  for (const r of PROFILE_RESOURCES) {
    const v = sample[r];
    if (v === undefined) continue;
    const d = (hour[r] ??= emptyDigest());
    ageDigest(addToDigest(d, v), options.maxSamplesPerHour);
  }
  p.updatedAt = Math.max(p.updatedAt, at);
}

/** Counts one start-up or promotion time, ms (in place). */
export function observeStartup(
  p: ServiceProfile,
  kind: 'cold' | 'promotion',
  ms: number,
  at: number,
  options: ResolvedProfileOptions,
): void {
  const startup = (p.startup ??= {});
  ageDigest(addToDigest((startup[kind] ??= emptyDigest()), ms), options.maxSamplesPerHour);
  p.updatedAt = Math.max(p.updatedAt, at);
}

/** What a merge of observed dependencies added to a profile. */
export type DependencyChange = Partial<Record<'listening' | 'connected' | 'libraries' | 'files', string[]>>;

/**
 * Merges observed dependencies into the profile (in place): new entries are added, the list keeps its
 * newest `maxDependencies`. Returns what was new (empty: nothing changed).
 */
export function observeDependencies(
  p: ServiceProfile,
  seen: Omit<ProfileDependencies, 'observedAt'>,
  at: number,
  options: ResolvedProfileOptions,
): DependencyChange {
  const change: DependencyChange = {};
  const merge = <T extends string | number>(have: T[], got: readonly T[]): T[] => {
    const known = new Set(have);
    const added = [...new Set(got)].filter((x) => !known.has(x));
    const all = [...have, ...added];
    return all.slice(Math.max(0, all.length - options.maxDependencies));
  };
  const d = p.dependencies;
  for (const key of ['listening', 'connected', 'libraries', 'files'] as const) {
    const before = new Set<string | number>(d[key]);
    const next = key === 'listening' ? merge(d.listening, seen.listening) : merge(d[key], seen[key]);
    const added = next.filter((x) => !before.has(x)).map(String);
    if (added.length > 0) change[key] = added;
    if (key === 'listening') d.listening = (next as number[]).sort((a, b) => a - b);
    else d[key] = next as string[];
  }
  d.observedAt = at;
  p.updatedAt = Math.max(p.updatedAt, at);
  return change;
}

/** Percentiles of one resource in one hour. */
export interface ResourcePercentiles {
  p50: number;
  p95: number;
  max: number;
  samples: number;
}

/** What `understudy profile` shows of one hour of the day. */
export interface ProfileHourView {
  hour: number;
  samples: number;
  /** Whether the hour has enough samples to size echoes and shadows. */
  enough: boolean;
  resources: Partial<Record<ProfileResource, ResourcePercentiles>>;
}

/** The percentiles of one resource of one hour (undefined: no samples). */
export function percentilesOf(d: Digest | undefined): ResourcePercentiles | undefined {
  if (!d || d.n === 0) return undefined;
  return { p50: digestQuantile(d, 0.5) ?? 0, p95: digestQuantile(d, 0.95) ?? 0, max: d.max, samples: d.n };
}

/** Samples of an hour (its CPU digest's count: CPU is sampled every time). */
export function hourSamples(p: ServiceProfile, hour: number): number {
  return p.hours[hour]?.cpu?.n ?? 0;
}

/** The percentiles of every hour that has samples, hour by hour. */
export function profileHours(p: ServiceProfile, options: ResolvedProfileOptions): ProfileHourView[] {
  const out: ProfileHourView[] = [];
  p.hours.forEach((h, hour) => {
    const resources: ProfileHourView['resources'] = {};
    for (const r of PROFILE_RESOURCES) {
      const v = percentilesOf(h[r]);
      if (v) resources[r] = v;
    }
    if (Object.keys(resources).length === 0) return;
    const samples = hourSamples(p, hour);
    out.push({ hour, samples, enough: samples >= options.minSamples, resources });
  });
  return out;
}

/**
 * Parses a stored profile; undefined when it is not one (a damaged or foreign record: the profile
 * starts afresh rather than failing the control plane).
 */
export function parseProfile(text: string): ServiceProfile | undefined {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null) return undefined;
  const p = v as Partial<ServiceProfile>;
  if (typeof p.service !== 'string' || typeof p.version !== 'number' || !Array.isArray(p.hours))
    return undefined;
  if (p.hours.length !== 24 || typeof p.dependencies !== 'object' || p.dependencies === null)
    return undefined;
  for (const h of p.hours) {
    if (typeof h !== 'object' || h === null) return undefined;
    if (!Object.values(h).every(isDigest)) return undefined;
  }
  if (p.startup !== undefined && (typeof p.startup !== 'object' || !Object.values(p.startup).every(isDigest)))
    return undefined;
  return p as ServiceProfile;
}
