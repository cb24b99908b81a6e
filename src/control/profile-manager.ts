import type { ServiceSpec } from '../config/index.js';
import type { AgentRegistry, InstanceStats } from '../agent/index.js';
import type { RouterStats } from '../router/index.js';
import type { StateStore } from '../store/index.js';
import {
  hourOf,
  hourSamples,
  newProfile,
  observeDependencies,
  observeStartup,
  observeUsage,
  percentilesOf,
  parseProfile,
  profileHours,
  resolveProfileOptions,
  type ProfileDependencies,
  type ProfileHourView,
  type ProfileOptions,
  type ResourcePercentiles,
  type ResolvedProfileOptions,
  type ServiceProfile,
  type UsageSample,
} from '../telemetry/index.js';
import type { DecisionLog } from './decision-log.js';
import { sizeFromProfile, type ProfileSizing } from './profile-sizing.js';
import type { ControlDecision, InstanceRecord, InstanceRole } from './records.js';

/** Where profiles are stored: `profiles/<service>`. */
export const PROFILE_PREFIX = 'profiles/';
/** How often a service's dependencies are read from its serving instances, ms. */
const FOOTPRINT_EVERY_MS = 30_000;
/** How often changed profiles are written to the store, ms. */
const FLUSH_EVERY_MS = 30_000;

/** What `understudy profile` and `GET /v1/services/:name/profile` show. */
export interface ProfileView {
  service: string;
  version: number;
  createdAt: number;
  updatedAt: number;
  /** Samples an hour needs before its percentiles size echoes and shadows. */
  minSamples: number;
  /** The hour of day (UTC) now, and how the next echo and shadow would be sized. */
  now: { hour: number; echo: ProfileSizing; shadow: ProfileSizing };
  spec: ServiceProfile['spec'];
  hours: ProfileHourView[];
  dependencies: ProfileDependencies;
  /** Start-up times, ms: a cold start until serving, a warm echo's promotion until serving. */
  startup: { cold?: ResourcePercentiles; promotion?: ResourcePercentiles };
}

/** What the profile manager needs. */
export interface ProfileManagerDeps {
  readonly store: StateStore;
  readonly decisions: Pick<DecisionLog, 'record'>;
  readonly agents: AgentRegistry;
  readonly specs: readonly ServiceSpec[];
  /** The service's router stats (its byte counters give network use). @default none */
  readonly router?: (service: string) => RouterStats | undefined;
  readonly options?: ProfileOptions;
}

/** Cumulative counters of an instance at its last sample (disk bytes). */
interface LastCounters {
  at: number;
  read: number;
  write: number;
}

/**
 * Seed 001's Shadow Profile Manager: one {@link ServiceProfile} per service, seeded from the spec,
 * refined from every sample of the serving instances (CPU, memory, disk I/O; network from the router's
 * byte counters: per backend with HTTP routing, per service with TCP routing) and from their /proc footprint every 30 s, stored
 * under `profiles/<service>` (any {@link StateStore}: SQLite or etcd), bounded in size (digests age,
 * dependency lists keep their newest entries). A refinement that changes what Understudy does — a
 * dependency seen for the first time, an hour that reaches enough samples — is a `profile` decision.
 */
export class ProfileManager {
  readonly #profiles = new Map<string, ServiceProfile>();
  readonly #dirty = new Set<string>();
  readonly #last = new Map<string, LastCounters>();
  readonly #net = new Map<string, { at: number; bytes: number; rate: number }>();
  /** Per instance (HTTP routing): its backend byte counters at its last sample. */
  readonly #netOf = new Map<string, { at: number; bytes: number }>();
  readonly #footprintAt = new Map<string, number>();
  /** Decisions whose start-up time was counted (the newest 1000). */
  readonly #counted = new Set<number>();
  #flushedAt = 0;
  readonly options: ResolvedProfileOptions;

  private constructor(private readonly deps: ProfileManagerDeps) {
    this.options = resolveProfileOptions(deps.options);
  }

  /** Loads the stored profiles of the specs' services (a new one, seeded from the spec, for the rest). */
  static async create(deps: ProfileManagerDeps, now = Date.now()): Promise<ProfileManager> {
    const m = new ProfileManager(deps);
    for (const spec of deps.specs) {
      const stored = await deps.store.get(PROFILE_PREFIX + spec.name);
      const seed = {
        ...(spec.resources.cpu !== undefined ? { cpu: spec.resources.cpu } : {}),
        ...(spec.resources.memory !== undefined ? { memoryBytes: spec.resources.memory } : {}),
      };
      const p = (stored && parseProfile(stored.value)) || newProfile(spec.name, seed, now);
      p.spec = seed;
      m.#profiles.set(spec.name, p);
    }
    return m;
  }

  /** The profile of a service (undefined: not a service of the spec). */
  profile(service: string): ServiceProfile | undefined {
    return this.#profiles.get(service);
  }

  /**
   * Counts one sample of a serving instance: CPU (cores), resident memory, disk read and write rates
   * (from the cumulative counters since its previous sample) and its network rate (the router's byte
   * counters, see `#network`). Records a `profile` decision when the sample's hour reaches enough samples.
   */
  observe(rec: InstanceRecord, stats: InstanceStats, servingCount: number): void {
    const p = this.#profiles.get(rec.service);
    if (!p) return;
    const sample: UsageSample = { cpu: stats.cpuPercent / 100, memory: stats.rssBytes };
    const last = this.#last.get(rec.id);
    if (last && stats.at > last.at && stats.ioAvailable !== false) {
      const s = (stats.at - last.at) / 1000;
      sample.diskRead = Math.max(0, stats.readBytes - last.read) / s;
      sample.diskWrite = Math.max(0, stats.writeBytes - last.write) / s;
    }
    this.#last.set(rec.id, { at: stats.at, read: stats.readBytes, write: stats.writeBytes });
    const net = this.#network(rec, stats.at, servingCount);
    if (net !== undefined) sample.network = net;
    const hour = hourOf(stats.at);
    const before = hourSamples(p, hour);
    observeUsage(p, sample, stats.at, this.options);
    this.#dirty.add(rec.service);
    if (before < this.options.minSamples && hourSamples(p, hour) >= this.options.minSamples)
      this.deps.decisions.record({
        kind: 'profile',
        service: rec.service,
        what: `profile of ${rec.service}: hour ${hour} (UTC) has enough data`,
        why: `${this.options.minSamples} samples of its serving instances: new echoes and shadows are sized by the profile's percentiles for this hour, no longer by the spec's fixed fractions`,
        inputs: { hour, samples: hourSamples(p, hour), version: p.version },
        outcome: { status: 'recorded' },
      });
  }

  /**
   * The instance's network rate, bytes/s in + out. HTTP routing: from the router's byte counters of
   * this instance as a backend (what it exchanged with the router since the previous sample). TCP
   * routing: the service's byte rate through the router divided over the serving set (its sockets are
   * not counted per backend). Undefined at an instance's first sample, or without a router.
   */
  #network(rec: InstanceRecord, at: number, servingCount: number): number | undefined {
    const stats = this.deps.router?.(rec.service);
    if (!stats) return undefined;
    if (stats.mode === 'http') {
      // Its entries: serving, and draining ones of an earlier join (a counter that restarts reads 0).
      let bytes = 0;
      let found = false;
      for (const b of stats.backends)
        if (b.id === rec.id) {
          bytes += b.bytes.in + b.bytes.out;
          found = true;
        }
      if (!found) return undefined;
      const prev = this.#netOf.get(rec.id);
      this.#netOf.set(rec.id, { at, bytes });
      return prev && at > prev.at ? Math.max(0, bytes - prev.bytes) / ((at - prev.at) / 1000) : undefined;
    }
    const tcp = stats.tcp;
    if (!tcp) return undefined;
    const bytes = tcp.bytesIn + tcp.bytesOut;
    const prev = this.#net.get(rec.service);
    if (prev && at - prev.at < 500) return prev.rate / Math.max(1, servingCount);
    const rate = prev && at > prev.at ? Math.max(0, bytes - prev.bytes) / ((at - prev.at) / 1000) : undefined;
    this.#net.set(rec.service, { at, bytes, rate: rate ?? 0 });
    return rate === undefined ? undefined : rate / Math.max(1, servingCount);
  }

  /**
   * Counts the start-up times decisions report: a cold join (`serving`, `coldStartMs`) and a warm
   * echo's promotion (`promote-echo` settled ok, `servesAfterMs`). Each decision is counted once.
   */
  observeDecision(d: ControlDecision): void {
    const p = this.#profiles.get(d.service);
    if (!p || this.#counted.has(d.seq)) return;
    const cold = d.kind === 'serving' ? d.inputs['coldStartMs'] : undefined;
    const warm =
      d.kind === 'promote-echo' && d.outcome.status === 'ok' ? d.inputs['servesAfterMs'] : undefined;
    const ms = typeof cold === 'number' ? cold : typeof warm === 'number' ? warm : undefined;
    if (ms === undefined) return;
    this.#counted.add(d.seq);
    if (this.#counted.size > 1000) this.#counted.delete(this.#counted.values().next().value ?? 0);
    observeStartup(p, typeof cold === 'number' ? 'cold' : 'promotion', ms, d.at, this.options);
    this.#dirty.add(d.service);
  }

  /** Forgets the counters of instances that are gone (bounded memory). */
  forget(liveIds: ReadonlySet<string>): void {
    for (const id of this.#last.keys()) if (!liveIds.has(id)) this.#last.delete(id);
    for (const id of this.#netOf.keys()) if (!liveIds.has(id)) this.#netOf.delete(id);
  }

  /**
   * Reads the /proc footprint of each service's running serving instances (every 30 s per service)
   * and merges it into the profile; new dependencies are a `profile` decision saying what was added.
   */
  async observeFootprints(instances: readonly InstanceRecord[], now: number): Promise<void> {
    for (const [service, p] of this.#profiles) {
      if (now - (this.#footprintAt.get(service) ?? 0) < FOOTPRINT_EVERY_MS) continue;
      const serving = instances.filter(
        (i) => i.service === service && i.role === 'primary' && i.phase === 'running',
      );
      if (serving.length === 0) continue;
      this.#footprintAt.set(service, now);
      const seen = {
        listening: [] as number[],
        connected: [] as string[],
        libraries: [] as string[],
        files: [] as string[],
      };
      for (const rec of serving) {
        if (!this.deps.agents.has(rec.host)) continue;
        const fp = await this.deps.agents
          .of(rec)
          .footprint(rec.id)
          .catch(() => undefined);
        if (!fp) continue;
        seen.listening.push(...fp.listening);
        seen.connected.push(...fp.connected);
        seen.libraries.push(...fp.libraries);
        seen.files.push(...fp.files);
      }
      const change = observeDependencies(p, seen, now, this.options);
      this.#dirty.add(service);
      const added = Object.entries(change);
      if (added.length === 0) continue;
      this.deps.decisions.record({
        kind: 'profile',
        service,
        what: `profile of ${service}: new dependencies ${added.map(([k, v]) => `${v.length} ${k}`).join(', ')}`,
        why: `seen in /proc of its serving instances (${serving.map((r) => r.id).join(', ')})`,
        inputs: { added: change, version: p.version },
        outcome: { status: 'recorded' },
      });
    }
  }

  /** How an instance of `role` would be started now (see {@link sizeFromProfile}). */
  sizing(
    spec: ServiceSpec,
    role: InstanceRole,
    supported: boolean,
    servingCount: number,
    now: number,
  ): ProfileSizing {
    return sizeFromProfile(
      spec,
      role,
      supported,
      this.#profiles.get(spec.name),
      this.options,
      servingCount,
      now,
    );
  }

  /** What `understudy profile` shows (undefined: no such service). */
  view(spec: ServiceSpec, supported: boolean, servingCount: number, now: number): ProfileView | undefined {
    const p = this.#profiles.get(spec.name);
    if (!p) return undefined;
    return {
      service: p.service,
      version: p.version,
      createdAt: p.createdAt,
      updatedAt: p.updatedAt,
      minSamples: this.options.minSamples,
      now: {
        hour: hourOf(now),
        echo: this.sizing(spec, 'echo', supported, servingCount, now),
        shadow: this.sizing(spec, 'shadow', supported, servingCount, now),
      },
      spec: p.spec,
      hours: profileHours(p, this.options),
      dependencies: p.dependencies,
      startup: this.#startup(p),
    };
  }

  #startup(p: ServiceProfile): ProfileView['startup'] {
    const out: ProfileView['startup'] = {};
    const cold = percentilesOf(p.startup?.cold);
    const promotion = percentilesOf(p.startup?.promotion);
    if (cold) out.cold = cold;
    if (promotion) out.promotion = promotion;
    return out;
  }

  /** Writes the changed profiles (each write a new version), at most every 30 s unless `force`. */
  async flush(now: number, force = false): Promise<void> {
    if (!force && now - this.#flushedAt < FLUSH_EVERY_MS) return;
    this.#flushedAt = now;
    for (const service of [...this.#dirty]) {
      const p = this.#profiles.get(service);
      this.#dirty.delete(service);
      if (!p) continue;
      p.version += 1;
      await this.deps.store.put(PROFILE_PREFIX + service, JSON.stringify(p));
    }
  }
}
