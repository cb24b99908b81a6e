import type { ServiceSpec } from '../config/index.js';
import { sizeInstances, type ServingUsage } from './echo-sizing.js';
import type { InstanceSupervisor } from './instance-supervisor.js';
import { MigrationWatch, type MigrationHosts } from './migration-watch.js';
import type { ProfileManager } from './profile-manager.js';
import { echoFloorFraction } from './profile-sizing.js';

const SYNC_TROUBLE_LIMIT = 5;
const SYNC_TROUBLE_WINDOW_MS = 60_000;

/** What echo upkeep works with. */
export interface EchoUpkeepDeps {
  /** The instances: their records, writes, stops, and the failover (switchover, recreating echoes). */
  readonly supervisor: InstanceSupervisor;
  readonly specs: readonly ServiceSpec[];
  /** The host instances are placed on (a migration's target). */
  readonly host: string;
  /** The services' profiles: fed every sample, and the floor of an echo's size. @default none */
  readonly profiles?: ProfileManager;
  /** Distributed mode: placement chooses a migration's target host. @default none (one host) */
  readonly hosts?: MigrationHosts;
}

/**
 * Keeping instances fit: echoes (and the serving instances of a fixed serving count) are sized to the
 * load (seeds 000, 002), an echo whose state sync keeps failing is recreated from a full copy (seed
 * 002), and a primary whose migration readiness stays high is moved to an echo ({@link MigrationWatch}).
 */
export class EchoUpkeep {
  /** Recent sync failures per echo. */
  readonly #syncTrouble = new Map<string, number[]>();
  /** When each echo was last resized. */
  readonly #lastResize = new Map<string, number>();
  /** Last sampled CPU utilisation (0..1 of its limit) of each service's primary: drives eager sync. */
  readonly #utilisation = new Map<string, number>();
  #cores = new Map<string, number>();

  readonly #migration: MigrationWatch | undefined;

  readonly #supervisor: InstanceSupervisor;
  readonly #specs: readonly ServiceSpec[];
  readonly #profiles: ProfileManager | undefined;

  constructor(deps: EchoUpkeepDeps) {
    this.#supervisor = deps.supervisor;
    this.#specs = deps.specs;
    this.#profiles = deps.profiles;
    if (MigrationWatch.wanted(deps.specs)) this.#migration = new MigrationWatch(deps);
  }

  /** CPU use (cores) of a serving instance at the last sample (once a second); the one sampler of them. */
  servingCores(id: string): number | undefined {
    return this.#cores.get(id);
  }

  /** The last migration readiness score (0..100) of a primary (undefined: migration is not watched). */
  readiness(id: string): number | undefined {
    return this.#migration?.readiness(id);
  }

  /** The primary's last sampled utilisation, 0..1. */
  utilisation(service: string): number {
    return this.#utilisation.get(service) ?? 0;
  }

  /**
   * Seed 002: an echo whose state sync failed {@link SYNC_TROUBLE_LIMIT} times within a minute is
   * recreated — stopped, its state directory and sync journal removed, provisioned again from a full copy.
   */
  onSyncTrouble(echoId: string, message: string): void {
    const now = Date.now();
    const recent = (this.#syncTrouble.get(echoId) ?? []).filter((t) => now - t < SYNC_TROUBLE_WINDOW_MS);
    recent.push(now);
    this.#syncTrouble.set(echoId, recent);
    const rec = this.#supervisor.allInstances().find((i) => i.id === echoId);
    if (recent.length < SYNC_TROUBLE_LIMIT || !rec || rec.role !== 'echo' || this.#supervisor.closed) return;
    this.#syncTrouble.delete(echoId);
    const decision = this.#supervisor.decisions.record({
      kind: 'recreate',
      service: rec.service,
      instance: rec.id,
      what: `recreate echo ${rec.id} from a full copy`,
      why: `its state sync failed ${recent.length} times within ${SYNC_TROUBLE_WINDOW_MS / 1000} s (last: ${message})`,
      inputs: { failures: recent.length },
      outcome: { status: 'pending' },
    });
    void this.#supervisor
      .recreateEcho(rec, decision)
      .catch((err: unknown) =>
        this.#supervisor.decisions.settle(decision, 'failed', `${(err as Error).message}`),
      );
  }

  /**
   * Samples each serving instance's CPU and memory use, and resizes echoes (and the serving instances
   * of a service with a fixed serving count) to follow it.
   */
  async sample(): Promise<void> {
    await this.#migration?.tick(Date.now());
    this.#supervisor.failover.external.sampleLag(this.#specs, Date.now());
    const usage = new Map<string, ServingUsage>();
    const busiest = new Map<string, number>();
    const cores = new Map<string, number>();
    const all = this.#supervisor.allInstances();
    const servingCount = (service: string): number =>
      all.filter((i) => i.service === service && i.role === 'primary' && i.phase === 'running').length;
    for (const rec of all) {
      if (rec.role !== 'primary' || rec.phase !== 'running') continue;
      // Its host's agent is gone for now (distributed mode: lease lapsed, restarting): no sample.
      if (!this.#supervisor.agents.has(rec.host)) continue;
      const stats = await this.#supervisor.agents
        .of(rec)
        .stats(rec.id)
        .catch(() => undefined);
      if (!stats) continue;
      const cpuUtilization = Math.min(1, stats.cpuPercent / 100 / (rec.limits.cpu ?? 1));
      const memoryUtilization = rec.limits.memoryBytes
        ? Math.min(1, stats.rssBytes / rec.limits.memoryBytes)
        : 0;
      usage.set(rec.id, { cpuUtilization, memoryUtilization });
      cores.set(rec.id, stats.cpuPercent / 100);
      this.#profiles?.observe(rec, stats, servingCount(rec.service));
      busiest.set(rec.service, Math.max(busiest.get(rec.service) ?? 0, cpuUtilization));
    }
    for (const [service, u] of busiest) this.#utilisation.set(service, u);
    if (this.#profiles) {
      const now = Date.now();
      this.#profiles.forget(new Set(all.filter((i) => i.phase === 'running').map((i) => i.id)));
      await this.#profiles.observeFootprints(all, now);
      await this.#profiles.flush(now);
    }
    this.#cores = cores;
    const supervisor = this.#supervisor;
    for (const spec of this.#specs) {
      if (supervisor.closed || supervisor.failover.busy(spec.name)) continue;
      const mine = supervisor.allInstances().filter((i) => i.service === spec.name);
      // An echo is not shrunk below what the profile sizes new echoes at (the spec's fraction without one).
      const floor = this.#profiles
        ? echoFloorFraction(
            spec,
            this.#profiles.sizing(spec, 'echo', true, servingCount(spec.name), Date.now()),
          )
        : undefined;
      const resized = await sizeInstances(
        spec,
        mine,
        usage,
        supervisor.agents,
        supervisor.decisions,
        this.#lastResize,
        Date.now(),
        floor,
      );
      for (const rec of resized) await supervisor.save(rec);
    }
  }
}
