import type { ServiceSpec } from '../config/index.js';
import type { AccuracyReport } from '../predict/index.js';
import type { StateStore } from '../store/index.js';
import { ServiceAutoscaler, type AutoscalerView } from './autoscaler.js';
import { recordError } from './decision-log.js';
import type { EchoUpkeep } from './echo-upkeep.js';
import type { Failover } from './failover.js';
import type { Reconciler } from './instance-supervisor.js';
import type { KeyedWorkQueue } from './keyed-work-queue.js';
import { specCounts, type DesiredCounts } from './reconcile.js';
import { demoteToPool, promoteIntoServing, type ServingSetHost } from './serving-set.js';

const DESIRED_PREFIX = 'scaling/';

/** Label of a serving-set change in the per-service work queue. */
export const SCALING_WORK = 'scaling';

/** What the coordinator needs besides the instances it changes (a {@link ServingSetHost}). */
export interface ScalingCoordinatorDeps {
  /** Where the desired counts are persisted (`scaling/<service>`). */
  readonly store: StateStore;
  /** The per-service work queue: a serving-set change holds its service (label {@link SCALING_WORK}). */
  readonly work: KeyedWorkQueue;
  /** The failover: no scaling while a promotion of the service is under way. */
  readonly failover: Pick<Failover, 'busy'>;
  /** Asked to reconcile once new desired counts are recorded. */
  readonly reconciler: Reconciler;
  /** The one sampler of serving instances' CPU use (cores, at its last sample). */
  readonly sampler: Pick<EchoUpkeep, 'servingCores'>;
  /** Whether a service is paused: its autoscaler records what it would do as `skipped`. @default never */
  readonly paused?: (service: string) => boolean;
}

/**
 * The control plane's side of scaling: one {@link ServiceAutoscaler} per scaled service, the desired
 * instance counts they set (persisted under `scaling/<service>`, so a restarted control process keeps
 * them), and the hold that keeps the reconciler off a service while its serving set changes.
 */
export class ScalingCoordinator {
  readonly #desired = new Map<string, DesiredCounts>();
  readonly #autoscalers = new Map<string, ServiceAutoscaler>();
  readonly #timers: NodeJS.Timeout[] = [];

  private constructor(
    private readonly specs: readonly ServiceSpec[],
    private readonly serving: ServingSetHost,
    private readonly host: ScalingCoordinatorDeps,
  ) {}

  /** Loads the recorded desired counts; makes an autoscaler for every service that scales. */
  static async create(
    specs: readonly ServiceSpec[],
    serving: ServingSetHost,
    host: ScalingCoordinatorDeps,
  ): Promise<ScalingCoordinator> {
    const c = new ScalingCoordinator(specs, serving, host);
    const names = new Set(specs.map((s) => s.name));
    for (const r of await host.store.list(DESIRED_PREFIX)) {
      const name = r.key.slice(DESIRED_PREFIX.length);
      if (names.has(name)) c.#desired.set(name, JSON.parse(r.value) as DesiredCounts);
    }
    for (const spec of specs) {
      if (!ServiceAutoscaler.wanted(spec)) {
        c.#desired.delete(spec.name);
        continue;
      }
      c.#autoscalers.set(
        spec.name,
        new ServiceAutoscaler(spec, {
          agents: serving.agents,
          decisions: serving.decisions,
          instancesOf: (service) => serving.instancesOf(service),
          dataPlane: (service) => serving.services.plane(service),
          servingCores: (id) => host.sampler.servingCores(id),
          desired: (service) => c.desired(service),
          apply: (service, counts, change) => c.#apply(service, counts, change),
          promoteIntoServing: (echo, why) => promoteIntoServing(serving, echo, why),
          demoteToPool: (rec, why) => demoteToPool(serving, rec, why),
          busy: (service) => host.failover.busy(service),
          paused: (service) => host.paused?.(service) ?? false,
        }),
      );
    }
    return c;
  }

  /** The desired counts the reconciler follows (services that don't scale: their spec's). */
  get desiredCounts(): ReadonlyMap<string, DesiredCounts> {
    return this.#desired;
  }

  desired(service: string): DesiredCounts {
    const spec = this.specs.find((s) => s.name === service);
    return this.#desired.get(service) ?? (spec ? specCounts(spec) : { serving: 1, echoes: 0, shadows: 0 });
  }

  /** Whether a serving-set change of the service is under way (the reconciler leaves it alone). */
  held(service: string): boolean {
    return this.host.work.has(service, SCALING_WORK);
  }

  /** Whether the service has an autoscaler. */
  scales(service: string): boolean {
    return this.#autoscalers.has(service);
  }

  view(service: string): AutoscalerView | undefined {
    return this.#autoscalers.get(service)?.view();
  }

  /** The accuracy of a scaled service's forecasts (undefined: the service does not scale). */
  accuracy(service: string, now: number): AccuracyReport | undefined {
    return this.#autoscalers.get(service)?.accuracy(now);
  }

  /** Seeds a service's forecaster with past load; see {@link ServiceAutoscaler.importHistory}. */
  importHistory(service: string, samples: ReadonlyArray<{ at: number; load: number }>, now: number): number {
    return this.#autoscalers.get(service)?.importHistory(samples, now) ?? 0;
  }

  /** Starts sampling: each autoscaler a few times per forecast step (between 4 Hz and 1 Hz). */
  start(): void {
    for (const [name, scaler] of this.#autoscalers) {
      const spec = this.specs.find((s) => s.name === name);
      const every = Math.min(1000, Math.max(250, (spec?.scaling.step ?? 2000) / 2));
      const timer = setInterval(() => {
        scaler
          .tick(Date.now())
          .catch((err: unknown) => recordError(this.serving.decisions, `autoscaler of ${name}`, err));
      }, every);
      timer.unref();
      this.#timers.push(timer);
    }
  }

  /** Stops sampling. Idempotent. */
  close(): void {
    for (const t of this.#timers.splice(0)) clearInterval(t);
  }

  async #apply(service: string, counts: DesiredCounts, change: () => Promise<void>): Promise<void> {
    // One operation on a service at a time: a promotion under way finishes first.
    await this.host.work.run(service, SCALING_WORK, async () => {
      await change();
      this.#desired.set(service, counts);
      await this.host.store.put(DESIRED_PREFIX + service, JSON.stringify(counts));
    });
    await this.host.reconciler.reconcileNow();
  }
}
