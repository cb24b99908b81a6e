import { join } from 'node:path';
import type { LoadedSpec, ServiceSpec } from '../config/index.js';
import { ErrorCode, UnderstudyError } from '../errors/index.js';
import { AgentRegistry, LocalAgent, systemClock, type Agent, type Clock } from '../agent/index.js';
import { Telemetry } from '../telemetry/index.js';
import { adoptSurvivors } from './adoption.js';
import { recoverPromotions } from './promotion-recovery.js';
import { InstanceRecords } from './instance-records.js';
import { InstanceSupervisor } from './instance-supervisor.js';
import { KeyedWorkQueue } from './keyed-work-queue.js';
import { moveInstance, reportRefusals } from './instance-transition.js';
import { DecisionLog, recordError } from './decision-log.js';
import { serviceView, type ServiceView } from './service-view.js';
import { resolveControlTimeouts, type ControlPlaneOptions } from './control-plane-options.js';
import { EchoUpkeep } from './echo-upkeep.js';
import { LoopDelay } from './loop-delay.js';
import { observeControlPlane } from './metrics-sample.js';
import { routeExternally } from './service-wiring.js';
import { ServiceRegistry } from './service-registry.js';
import { ExternalRouting } from './external-routing.js';
import type { Failover } from './failover.js';
import { newInstanceRecord, nextInstanceId, type LaunchContext } from './instance-launch.js';
import { actionDecision, reconcile, type Action } from './reconcile.js';
import { ScalingCoordinator } from './scaling-coordinator.js';
import type { ControlDecision, InstanceRecord } from './records.js';

/**
 * The orchestrator: reconciles the specs (desired) with the runtime and store (actual), executes the
 * actions, fails over to an echo when a primary fails, and records every action and observation as a
 * {@link ControlDecision}.
 */
export class ControlPlane {
  readonly decisions: DecisionLog;
  /** Its metrics (served at `GET /metrics`), sampled from this control plane on every scrape. */
  readonly telemetry: Telemetry;
  readonly #options: Required<
    Omit<ControlPlaneOptions, 'spec' | 'runtime' | 'agents' | 'clock' | 'timeouts'>
  > & { spec: LoadedSpec };
  /** The agents of the hosts instances run on: control reaches instances only through them. */
  readonly #agents: AgentRegistry;
  readonly #clock: Clock;
  /** Where instances' directories and logs go. */
  readonly #ctx: LaunchContext;
  /** The instance records: a cache of the store's `instances/`, kept by list+watch, written by compare-and-set. */
  readonly #records: InstanceRecords;
  /** One queue of work per service: promotions and serving-set changes never run at once on a service. */
  readonly #work = new KeyedWorkQueue();
  /** The data planes and file syncs of the services (wired at start). */
  readonly #services = new ServiceRegistry();
  /** Watches and reacts to each instance (health, hangs, exits), and owns the failover. */
  readonly #supervisor: InstanceSupervisor;
  #external: ExternalRouting | undefined;
  /** Autoscalers and the desired instance counts of scaled services. */
  #scaling!: ScalingCoordinator;
  readonly #echoes: EchoUpkeep;
  #sampler: NodeJS.Timeout | undefined;
  readonly #loopDelay = new LoopDelay();
  #cancelTimer: (() => void) | undefined;
  #reconciling = false;
  #again = false;
  #closed = false;
  #started = false;

  private constructor(options: ControlPlaneOptions, decisions: DecisionLog, records: InstanceRecords) {
    const { runtime, agents, clock, timeouts, ...rest } = options;
    this.#options = {
      host: 'local',
      tickMs: 250,
      logMaxBytes: 10 * 1024 * 1024,
      telemetry: new Telemetry(),
      ...rest,
    };
    if (!agents && !runtime)
      throw new UnderstudyError(ErrorCode.Usage, 'a control plane needs a runtime or agents');
    this.#agents =
      agents ?? new AgentRegistry([new LocalAgent({ runtime: runtime!, host: this.#options.host })]);
    this.#clock = clock ?? systemClock;
    this.decisions = decisions;
    this.#records = records;
    this.#ctx = {
      dataDir: this.#options.dataDir,
      specDir: this.#options.spec.dir,
      host: this.#options.host,
      logMaxBytes: this.#options.logMaxBytes,
    };
    this.telemetry = this.#options.telemetry;
    observeControlPlane(this.telemetry, decisions, {
      services: () => this.services(),
      router: (service) => this.#services.plane(service)?.router.stats(),
      readiness: (id) => this.#echoes.readiness(id),
      eventLoopDelay: () => this.eventLoopDelay(),
    });
    this.#supervisor = new InstanceSupervisor({
      records,
      decisions,
      agents: this.#agents,
      clock: this.#clock,
      timeouts: resolveControlTimeouts(timeouts),
      store: this.#options.store,
      specs: this.specs,
      services: this.#services,
      launchContext: this.#ctx,
      telemetry: this.telemetry,
      work: this.#work,
      reconciler: this,
    });
    this.#echoes = new EchoUpkeep({
      supervisor: this.#supervisor,
      specs: this.specs,
      host: this.#options.host,
    });
  }

  /** Promotion of echoes: automatic failover, forced failover and planned switchover. */
  get failover(): Failover {
    return this.#supervisor.failover;
  }

  /** Creates the control plane and loads recorded instances from the store (it does not start anything yet). */
  static async create(options: ControlPlaneOptions): Promise<ControlPlane> {
    const clock = options.clock ?? systemClock;
    const decisions = await DecisionLog.create({ store: options.store, now: () => clock.now() });
    // The records are loaded before the control plane exists; their watch reaches it once made.
    const late: { plane?: ControlPlane } = {};
    const records = await InstanceRecords.create({
      store: options.store,
      report: reportRefusals(decisions),
      // Another writer changed an instance: decide again from the store (once this process runs).
      onForeignChange: () => {
        const plane = late.plane;
        if (plane && plane.#started)
          void plane.reconcileNow().catch((err: unknown) => recordError(decisions, 'reconcile', err));
      },
      onWatchError: (err) => recordError(decisions, 'the watch of instance records', err),
    });
    const made = new ControlPlane(options, decisions, records);
    late.plane = made;
    made.#scaling = await ScalingCoordinator.create(made.specs, made.#supervisor, {
      store: options.store,
      work: made.#work,
      failover: made.failover,
      reconciler: made,
      sampler: made.#echoes,
    });
    return made;
  }

  /** The services as loaded from the spec file. */
  get specs(): readonly ServiceSpec[] {
    return this.#options.spec.spec.services;
  }

  /** The agent of the host new instances are placed on. */
  get #placement(): Agent {
    return this.#agents.get(this.#options.host);
  }

  /** Starts the routers and reconciling: instances are started, watched, restarted or failed over. */
  async start(): Promise<void> {
    this.#started = true;
    this.#loopDelay.start();
    this.#supervisor.start();
    this.#external = await ExternalRouting.create(this.#options.spec.spec);
    for (const spec of this.specs) {
      await this.#options.store.put(`services/${spec.name}`, JSON.stringify(spec));
      await this.#services.wire(spec, {
        epoch: await this.#options.store.epoch(spec.name),
        agent: this.#placement,
        addressOf: (rec) => this.#agents.addressOf(rec),
        decisions: this.decisions,
        utilisation: () => this.#echoes.utilisation(spec.name),
        onPrimary: (rec, port) =>
          this.#external &&
          routeExternally(this.#external, this.decisions, spec, rec, this.#agents.addressOf(rec), port),
        onSyncTrouble: (echo, message) => this.#echoes.onSyncTrouble(echo, message),
        mutationLogDir: join(this.#options.dataDir, 'mutations', spec.name),
      });
    }
    // A promotion the previous control process was killed in the middle of is finished first, so that
    // adoption sees consistent roles and epochs.
    await recoverPromotions(this.#supervisor);
    await adoptSurvivors(this.#supervisor);
    this.#sampler = setInterval(() => void this.#echoes.sample(), 1000);
    this.#sampler.unref();
    this.#scaling.start();
    await this.reconcileNow();
    this.#schedule();
  }

  /** Runs one reconcile pass at once (coalesces concurrent calls). */
  async reconcileNow(): Promise<void> {
    if (this.#closed) return;
    if (this.#reconciling) {
      this.#again = true;
      return;
    }
    this.#reconciling = true;
    try {
      do {
        this.#again = false;
        // A service with a promotion or serving-set change under way is left alone this pass.
        const busy = new Set(this.specs.filter((s) => this.#work.busy(s.name)).map((s) => s.name));
        const actions = reconcile(
          this.specs.filter((s) => !busy.has(s.name)),
          [...this.#records.values()].filter((r) => !busy.has(r.service)),
          this.#clock.now(),
          this.#scaling.desiredCounts,
        );
        for (const action of actions) {
          if (this.#closed) return;
          // A promotion or serving-set change that began during this pass: its service's remaining
          // actions were computed before it and wait for the next pass.
          if (this.#work.busy(action.service)) continue;
          await this.#execute(action);
        }
      } while (this.#again && !this.#closed);
    } finally {
      this.#reconciling = false;
    }
  }

  #schedule(): void {
    if (this.#closed) return;
    this.#cancelTimer = this.#clock.setTimer(() => {
      this.reconcileNow()
        .catch((err: unknown) => this.#recordError('reconcile', err))
        .finally(() => this.#schedule());
    }, this.#options.tickMs);
  }

  async #execute(action: Action): Promise<void> {
    let rec: InstanceRecord | undefined;
    if (action.type === 'start') {
      const spec = this.#specOf(action.service);
      const id = nextInstanceId(this.#records.values(), action.service);
      rec = await newInstanceRecord(spec, id, action.role, action.slot, this.#ctx, this.#placement);
      this.#records.add(rec);
    } else {
      rec = this.#records.get(action.instance);
    }
    if (!rec) return;
    const decision = this.decisions.record(actionDecision(action, rec));
    if (action.type === 'start' || action.type === 'restart') {
      if (action.type === 'restart') rec.restarts.push(this.#clock.now());
      await this.#supervisor.startInstance(rec, decision);
      return;
    }
    await this.#supervisor.stopInstance(rec, action.type === 'give-up' ? 'failed' : 'stopped');
    this.decisions.settle(decision, 'ok');
  }

  #specOf(name: string): ServiceSpec {
    return this.#supervisor.specOf(name);
  }

  /** Restarts one instance on request (API/CLI); recorded as a decision. */
  async restartInstance(id: string, reason: string): Promise<ControlDecision> {
    const rec = this.#records.get(id);
    if (!rec) throw new UnderstudyError(ErrorCode.NotFound, `no instance named '${id}'`);
    const decision = this.decisions.record({
      kind: 'restart',
      service: rec.service,
      instance: id,
      what: `restart ${rec.role} ${id}`,
      why: `requested: ${reason}`,
      inputs: { requested: true },
      outcome: { status: 'pending' },
    });
    await this.#supervisor.stopInstance(rec, 'stopped');
    await this.#supervisor.startInstance(rec, decision);
    return decision;
  }

  /** Forced failover of a service to its best echo (API/CLI). */
  async forceFailover(service: string, reason: string): Promise<ControlDecision> {
    this.#specOf(service);
    const old = this.instances().find(
      (i) => i.service === service && i.role === 'primary' && i.phase !== 'stopped',
    );
    if (old) this.#supervisor.unwatch(old.id);
    const decision = await this.failover.failover(service, {
      kind: 'forced',
      detail: reason,
      evidence: {},
      detectedAt: this.#clock.now(),
    });
    if (old) this.#supervisor.rejoinLater(old);
    return decision;
  }

  /** Planned switchover of a service (API/CLI): zero failed requests. */
  async switchover(service: string, to?: string): Promise<ControlDecision> {
    this.#specOf(service);
    return this.failover.switchover(service, to);
  }

  /** Instance-record writes that failed since start (each also recorded as an `error` decision). */
  get failedWrites(): number {
    return this.#supervisor.failedWrites;
  }

  #recordError(where: string, err: unknown): void {
    recordError(this.decisions, where, err);
  }

  /** Current instances, newest state. */
  instances(): InstanceRecord[] {
    return this.#supervisor.allInstances();
  }

  /** Services with their instances, data plane and last failover. */
  async services(): Promise<ServiceView[]> {
    const out: ServiceView[] = [];
    for (const spec of this.specs) {
      const [name, epoch] = [spec.name, await this.#options.store.epoch(spec.name)];
      const instances = this.instances().filter((i) => i.service === name && i.phase !== 'stopped');
      const [plane, files, last] = [
        this.#services.plane(name),
        this.#services.files(name),
        this.failover.last(name),
      ];
      const [desired, scaling] = [this.#scaling.desired(name), this.#scaling.view(name)];
      out.push(serviceView(spec, epoch, instances, { plane, files, last, desired, scaling }));
    }
    return out;
  }

  /**
   * Seeds the forecaster of a scaled service with past load (requests/s at past times, ms since the
   * epoch, oldest first). Returns the samples taken (0: the service does not scale, or its capacity is
   * still being measured).
   */
  importLoadHistory(service: string, samples: ReadonlyArray<{ at: number; load: number }>): number {
    return this.#scaling.importHistory(service, samples, this.#clock.now());
  }

  /** Event-loop delay of the control process (ms): keep the data plane's loop free. */
  eventLoopDelay(): { p50Ms: number; p99Ms: number; maxMs: number } {
    return this.#loopDelay.stats();
  }

  /** Stops every router and instance gracefully and stops reconciling. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#cancelTimer?.();
    this.#supervisor.close();
    if (this.#sampler) clearInterval(this.#sampler);
    this.#scaling.close();
    await this.#services.close();
    await this.#external?.close();
    const grace = Math.max(...this.specs.map((s) => s.stopGrace), 0);
    await Promise.all(this.#agents.all().map((a) => a.close({ graceMs: grace })));
    for (const rec of this.#records.values()) {
      if (rec.phase === 'stopped' || rec.phase === 'failed') continue;
      moveInstance(this.decisions, rec, 'stop');
      await this.#supervisor.save(rec);
      const what = `stop ${rec.role} ${rec.id}`;
      const base = { service: rec.service, instance: rec.id, inputs: {}, outcome: { status: 'ok' as const } };
      this.decisions.record({ ...base, kind: 'stop', what, why: 'control plane shutting down' });
    }
    await this.#records.flush();
    this.#records.close();
    await this.decisions.flush();
    this.#loopDelay.stop();
  }
}
