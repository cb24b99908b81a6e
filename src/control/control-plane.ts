import { join } from 'node:path';
import type { LoadedSpec, ServiceSpec } from '../config/index.js';
import { ErrorCode, UnderstudyError } from '../errors/index.js';
import { AgentRegistry, ingressAt, LocalAgent, systemClock, type Agent, type Clock } from '../agent/index.js';
import { Telemetry } from '../telemetry/index.js';
import { adoptSurvivors } from './adoption.js';
import { recoverPromotions } from './promotion-recovery.js';
import { InstanceRecords } from './instance-records.js';
import { InstanceSupervisor } from './instance-supervisor.js';
import { KeyedWorkQueue } from './keyed-work-queue.js';
import { reportRefusals } from './instance-transition.js';
import { DecisionLog, recordError } from './decision-log.js';
import { serviceView, type ServiceView } from './service-view.js';
import { ServiceHistory, type HistorySample } from './service-history.js';
import type { AccuracyReport } from '../predict/index.js';
import { resolveControlTimeouts, type ControlPlaneOptions } from './control-plane-options.js';
import { EchoUpkeep } from './echo-upkeep.js';
import { LoopDelay } from './loop-delay.js';
import { observeControlPlane } from './metrics-sample.js';
import { routeExternally } from './service-wiring.js';
import { ServiceRegistry } from './service-registry.js';
import { ExternalRouting } from './external-routing.js';
import type { Failover } from './failover.js';
import type { LaunchContext } from './instance-launch.js';
import { ReconcileLoop } from './reconcile-loop.js';
import { ScalingCoordinator } from './scaling-coordinator.js';
import { ProfileManager, type ProfileView } from './profile-manager.js';
import { RecycleWatch } from './profile-recycle.js';
import type { ControlDecision, InstanceRecord } from './records.js';
import { Maintenance, type PauseRecord } from './maintenance.js';
import { ClusterHosts, hostDirectoryOf } from './cluster-hosts.js';
import { HostsFileSync, type HostsFileSyncDeps } from './hosts-file-sync.js';
import type { ReloadPlan } from './spec-reload.js';
import {
  applySpecReload,
  checkFailoverTarget,
  restartOnRequest,
  stopEveryInstance,
  type OperatorActionDeps,
} from './operator-actions.js';

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
    Omit<ControlPlaneOptions, 'spec' | 'runtime' | 'agents' | 'clock' | 'timeouts' | 'hosts' | 'upstreamTls'>
  > & { spec: LoadedSpec } & Pick<ControlPlaneOptions, 'upstreamTls'>;
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
  /** Distributed mode: host states, placement of new instances, reactions to a lost host. */
  readonly #hosts: ClusterHosts | undefined;
  /** Paused services (maintenance mode). */
  readonly #maintenance: Maintenance;
  #sampler: NodeJS.Timeout | undefined;
  /** The last minutes of every service, a sample a second (the dashboard's charts). */
  readonly #history = new ServiceHistory();
  #historyTimer: NodeJS.Timeout | undefined;
  readonly #loopDelay = new LoopDelay();
  /** Seed 001's recycling of the shadows that fed new serving instances. */
  #recycle!: RecycleWatch;
  /** The services' profiles (seed 001): expected resources per hour of day and dependencies. */
  readonly #profiles: ProfileManager;
  /** The reconcile loop: passes every `tickMs` and on request. */
  readonly #loop: ReconcileLoop;
  #closed = false;
  #started = false;

  private constructor(
    options: ControlPlaneOptions,
    decisions: DecisionLog,
    records: InstanceRecords,
    maintenance: Maintenance,
    profiles: ProfileManager,
  ) {
    const { runtime, agents, clock, timeouts, hosts, ...rest } = options;
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
    this.#maintenance = maintenance;
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
      maintenance,
      profiles,
    });
    this.#profiles = profiles;
    const directory = hostDirectoryOf(this.#agents);
    this.#hosts = directory
      ? new ClusterHosts(
          directory,
          {
            decisions,
            now: () => this.#clock.now(),
            records: () => this.#supervisor.allInstances(),
            specOf: (s) => this.#supervisor.specOrUndefined(s),
            // A file sync across hosts (HostsFileSync) pins nothing; one on a single agent does.
            fileSyncHost: (s) => {
              const files = this.#services.files(s);
              return files && !(files instanceof HostsFileSync) ? this.#options.host : undefined;
            },
            loss: {
              primaryLost: (rec, detail, evidence, to) =>
                this.#supervisor.primaryLost(
                  rec,
                  { kind: 'host', detail, evidence, detectedAt: this.#clock.now() },
                  to,
                ),
              shadowLost: (rec) => {
                this.#supervisor.markLost(rec);
                void this.reconcileNow().catch((err: unknown) => recordError(decisions, 'reconcile', err));
              },
              // While the failover waits for the lost host's self-fence deadline: the router dials the
              // echo once through its host's ingress (its check of the instance is then done).
              prepare: (rec, echo) => {
                const target = this.#supervisor.allInstances().find((i) => i.id === echo);
                if (target)
                  void this.#services
                    .plane(rec.service)
                    ?.warmUpstream(target)
                    .catch(() => false);
              },
            },
          },
          hosts,
        )
      : undefined;
    this.#loop = new ReconcileLoop({
      specs: () => this.specs,
      records,
      work: this.#work,
      supervisor: this.#supervisor,
      hosts: this.#hosts,
      agents: this.#agents,
      clock: this.#clock,
      decisions,
      launchContext: this.#ctx,
      placement: () => this.#placement,
      desiredCounts: () => this.#scaling.desiredCounts,
      tickMs: this.#options.tickMs,
    });
    this.#echoes = new EchoUpkeep({
      supervisor: this.#supervisor,
      specs: this.specs,
      host: this.#options.host,
      profiles,
      ...(this.#hosts ? { hosts: this.#hosts } : {}),
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
    const maintenance = await Maintenance.create(options.store, decisions);
    // The agents are made in the constructor: the profile manager reaches them through `late`.
    const agentsOf = (): AgentRegistry => {
      if (!late.plane)
        throw new UnderstudyError(ErrorCode.Internal, 'profiles used before the control plane');
      return late.plane.#agents;
    };
    const profiles = await ProfileManager.create({
      store: options.store,
      decisions,
      get agents() {
        return agentsOf();
      },
      specs: options.spec.spec.services,
      router: (service) => {
        const plane = late.plane;
        return plane ? plane.#services.plane(service)?.router.stats() : undefined;
      },
    });
    decisions.subscribe((d) => profiles.observeDecision(d));
    const made = new ControlPlane(options, decisions, records, maintenance, profiles);
    late.plane = made;
    made.#recycle = new RecycleWatch(made.#supervisor, (service) => made.#scaling.desired(service));
    made.#supervisor.recycler = made.#recycle;
    made.#scaling = await ScalingCoordinator.create(made.specs, made.#supervisor, {
      store: options.store,
      work: made.#work,
      failover: made.failover,
      reconciler: made,
      sampler: made.#echoes,
      paused: (service) => maintenance.isPaused(service),
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

  /** How a service's file sync finds the agent and host of each of its instances (distributed mode). */
  #crossHost(service: string): HostsFileSyncDeps {
    const find = (i: { id?: string; stateDir?: string }) =>
      this.#supervisor
        .allInstances()
        .find((r) => r.service === service && (i.id ? r.id === i.id : r.stateDir === i.stateDir));
    return {
      agentOf: (h) => this.#agents.get(h),
      hostOf: (i) => find(i)?.host,
      defaultHost: this.#options.host,
      onAgent: (listener) => this.#agents.onAgent(listener),
    };
  }

  /** Starts the routers and reconciling: instances are started, watched, restarted or failed over. */
  async start(): Promise<void> {
    this.#started = true;
    this.#loopDelay.start();
    this.#supervisor.start();
    this.#hosts?.start();
    this.#external = await ExternalRouting.create(this.#options.spec.spec);
    for (const spec of this.specs) {
      await this.#options.store.put(`services/${spec.name}`, JSON.stringify(spec));
      await this.#services.wire(spec, {
        epoch: await this.#options.store.epoch(spec.name),
        agent: this.#placement,
        // Distributed mode: the file sync runs where the primary is and reaches echoes on other hosts.
        ...(this.#hosts ? { crossHost: this.#crossHost(spec.name) } : {}),
        addressOf: (rec) => this.#agents.addressOf(rec),
        store: this.#options.store,
        hosts: Object.fromEntries(this.#agents.all().map((a) => [a.host, a.address])),
        decisions: this.decisions,
        utilisation: () => this.#echoes.utilisation(spec.name),
        onPrimary: (rec, port) =>
          this.#external &&
          routeExternally(this.#external, this.decisions, spec, rec, this.#agents.addressOf(rec), port),
        onSyncTrouble: (echo, message) => this.#echoes.onSyncTrouble(echo, message),
        mutationLogDir: join(this.#options.dataDir, 'mutations', spec.name),
      });
      // Instances on other hosts are reached through their agent's TLS ingress (before any backend).
      const tls = this.#options.upstreamTls;
      if (tls)
        this.#services.plane(spec.name)?.router.setUpstreamTls({
          ...tls,
          ingressOf: (address) => ingressAt(this.#agents.all(), address),
        });
      // A service without any instance yet starts its state with this log: the log holds all of it
      // (an echo on another host may start empty and replay it). Not so for a service whose instances
      // another control process started: their state predates this log.
      const log = this.#services.plane(spec.name)?.replication?.log;
      if (log && ![...this.#records.values()].some((r) => r.service === spec.name)) await log.markGenesis();
    }
    // A promotion the previous control process was killed in the middle of is finished first, so that
    // adoption sees consistent roles and epochs.
    await recoverPromotions(this.#supervisor);
    await adoptSurvivors(this.#supervisor);
    this.#sampler = setInterval(
      () =>
        void this.#echoes
          .sample()
          .then(() => this.#recycle.tick(this.#clock.now()))
          .catch((err: unknown) => this.#recordError('sampling the serving instances', err)),
      1000,
    );
    this.#sampler.unref();
    this.#historyTimer = setInterval(() => {
      this.services()
        .then((views) => this.#history.record(views, this.#clock.now()))
        .catch((err: unknown) => this.#recordError('the history sampler', err));
    }, 1000);
    this.#historyTimer.unref();
    this.#scaling.start();
    await this.#loop.start();
  }

  /** Runs one reconcile pass at once (coalesces concurrent calls). */
  async reconcileNow(): Promise<void> {
    await this.#loop.reconcileNow();
  }

  #specOf(name: string): ServiceSpec {
    return this.#supervisor.specOf(name);
  }

  /**
   * Restarts one instance on request (API/CLI); recorded as a decision. A primary that serves alone (no
   * other running primary) is restarted only with `force` (its clients see the downtime); without it,
   * UNDERSTUDY_ERR_UNSAFE tells the operator to switch over first.
   */
  async restartInstance(id: string, reason: string, force = false): Promise<ControlDecision> {
    return restartOnRequest(this.#actionDeps, id, reason, force);
  }

  /**
   * Forced failover of a service (API/CLI) to its best echo, or `to` a chosen one (patronictl's
   * `failover --candidate`): the old primary is fenced. Thrown: UNDERSTUDY_ERR_NOT_FOUND for an unknown
   * target, UNDERSTUDY_ERR_FAILOVER for one that is not a healthy echo of the service.
   */
  async forceFailover(service: string, reason: string, to?: string): Promise<ControlDecision> {
    this.#specOf(service);
    if (to !== undefined) checkFailoverTarget(this.#records, this.failover, service, to);
    const old = this.instances().find(
      (i) => i.service === service && i.role === 'primary' && i.phase !== 'stopped',
    );
    if (old) this.#supervisor.unwatch(old.id);
    const decision = await this.failover.failover(
      service,
      { kind: 'forced', detail: reason, evidence: to ? { to } : {}, detectedAt: this.#clock.now() },
      to,
    );
    if (old) this.#supervisor.rejoinLater(old);
    return decision;
  }

  /** Whether a service is paused (maintenance mode), and since when and why. */
  pauseOf(service: string): PauseRecord | undefined {
    return this.#maintenance.pauseOf(service);
  }

  /**
   * Pauses a service (maintenance mode): no automatic failover or autoscaling until {@link resume};
   * what would have been done is recorded as `skipped`. Stored: it survives a restart of control.
   */
  async pause(service: string, reason: string): Promise<ControlDecision> {
    this.#specOf(service);
    return this.#maintenance.pause(service, reason, this.#clock.now());
  }

  /** Resumes a paused service; a failover skipped while paused is carried out if the primary is still down. */
  async resume(service: string, reason: string): Promise<ControlDecision> {
    this.#specOf(service);
    const decision = await this.#maintenance.resume(service, reason, (pending) =>
      this.#supervisor.resumeFailover(pending),
    );
    await this.reconcileNow();
    return decision;
  }

  /**
   * Applies a newly loaded spec file: the fields that can change live (see `LIVE_FIELDS`) change at
   * once and the reconciler acts on them; the others are reported as needing a restart and keep their
   * running values. Recorded as one `reload` decision.
   */
  async reload(next: LoadedSpec): Promise<{ decision: ControlDecision; plan: ReloadPlan }> {
    const done = await applySpecReload(
      { ...this.#actionDeps, store: this.#options.store, scales: (s) => this.#scaling.scales(s) },
      this.#options.spec,
      next,
    );
    await this.reconcileNow();
    return done;
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
      const paused = this.#maintenance.pauseOf(name);
      out.push({
        ...serviceView(spec, epoch, instances, {
          plane,
          files,
          last,
          desired,
          scaling,
          external: spec.echo.mode === 'external' ? this.failover.external.views(name) : undefined,
        }),
        ...(paused ? { paused } : {}),
      });
    }
    return out;
  }

  /** The recent samples of a service taken after `after` (ms), oldest first; undefined: never sampled. */
  history(service: string, after?: number): HistorySample[] | undefined {
    return this.#history.samples(service, after);
  }

  /** The profile of a service (seed 001): percentiles per hour of day, dependencies, how echoes are sized now. */
  async profile(service: string): Promise<ProfileView | undefined> {
    const spec = this.specs.find((s) => s.name === service);
    if (!spec) return undefined;
    const supported = (await this.#placement.limitsSupport()).supported;
    const serving = this.#supervisor
      .allInstances()
      .filter((i) => i.service === service && i.role === 'primary' && i.phase === 'running').length;
    return this.#profiles.view(spec, supported, serving, this.#clock.now());
  }

  /** How a scaled service's forecasts compared with the load that came; undefined: it does not scale. */
  forecastAccuracy(service: string): AccuracyReport | undefined {
    return this.#scaling.accuracy(service, this.#clock.now());
  }

  /**
   * Seeds the forecaster of a scaled service with past load (requests/s at past times, ms since the
   * epoch, oldest first). Returns the samples taken (0: the service does not scale, or its capacity is
   * still being measured).
   */
  importLoadHistory(service: string, samples: ReadonlyArray<{ at: number; load: number }>): number {
    return this.#scaling.importHistory(service, samples, this.#clock.now());
  }

  /** A service's current epoch as its router holds it (undefined before start, or without a router). */
  epochOf(service: string): number | undefined {
    return this.#services.plane(service)?.router.epoch;
  }

  /** Event-loop delay of the control process (ms): keep the data plane's loop free. */
  eventLoopDelay(): { p50Ms: number; p99Ms: number; maxMs: number } {
    return this.#loopDelay.stats();
  }

  /** What the operator actions (operator-actions.ts) work on. */
  get #actionDeps(): OperatorActionDeps {
    return { records: this.#records, supervisor: this.#supervisor, decisions: this.decisions };
  }

  /**
   * Stops every router and instance gracefully and stops reconciling. Idempotent. With
   * `leaveRunning` (a control replica ending its term in distributed mode) the instances keep running
   * on their agents and their records are left as they are: the next leader adopts them.
   */
  async close(options: { leaveRunning?: boolean } = {}): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#loop.close();
    this.#hosts?.close();
    this.#supervisor.close();
    if (this.#sampler) clearInterval(this.#sampler);
    if (this.#historyTimer) clearInterval(this.#historyTimer);
    this.#scaling.close();
    await this.#profiles
      .flush(this.#clock.now(), true)
      .catch((err: unknown) => this.#recordError('writing the profiles', err));
    await this.#services.close();
    await this.#external?.close();
    if (options.leaveRunning) {
      await Promise.all(this.#agents.all().map((a) => a.close({ leaveRunning: true })));
    } else {
      await stopEveryInstance({ ...this.#actionDeps, agents: this.#agents }, this.specs);
    }
    await this.#records.flush();
    this.#records.close();
    await this.decisions.flush();
    this.#loopDelay.stop();
  }
}
