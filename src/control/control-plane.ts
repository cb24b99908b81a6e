import type { LoadedSpec, ServiceSpec } from '../config/index.js';
import { ErrorCode, UnderstudyError } from '../errors/index.js';
import type { FailureVerdict, HealthVerdict } from '../health/index.js';
import {
  AgentRegistry,
  LocalAgent,
  systemClock,
  type Agent,
  type Clock,
  type InstanceExit,
  type InstanceHandle,
} from '../agent/index.js';
import { Telemetry } from '../telemetry/index.js';
import { adoptSurvivors, type AdoptionHost } from './adoption.js';
import { recoverPromotions } from './promotion-recovery.js';
import { InstanceRecords } from './instance-records.js';
import { KeyedWorkQueue } from './keyed-work-queue.js';
import { moveInstance, reportRefusals, type InstanceEvent } from './instance-transition.js';
import { DecisionLog } from './decision-log.js';
import { serviceView, type ServiceView } from './service-view.js';
import {
  resolveControlTimeouts,
  type ControlPlaneOptions,
  type ControlTimeouts,
} from './control-plane-options.js';
import { EchoUpkeep } from './echo-upkeep.js';
import { LoopDelay } from './loop-delay.js';
import { observeControlPlane } from './metrics-sample.js';
import { routeExternally } from './service-wiring.js';
import { ServiceRegistry } from './service-registry.js';
import { ExternalRouting } from './external-routing.js';
import { Failover, type FailoverCause, type FailoverHost } from './failover.js';
import {
  applyHandle,
  buildLaunch,
  limitsFor,
  newInstanceRecord,
  nextInstanceId,
  type LaunchContext,
} from './instance-launch.js';
import { waitReady, watchInstance } from './instance-watch.js';
import { actionDecision, reconcile, describeExit, type Action } from './reconcile.js';
import { ScalingCoordinator } from './scaling-coordinator.js';
import {
  benchHung,
  benchUnhealthy,
  recordColdJoin,
  refreshServing,
  restartBenched,
  seedShadowState,
  type ServingSetHost,
} from './serving-set.js';
import type { ControlDecision, InstanceRecord } from './records.js';
import { applyRestartPolicy, killForRestart, scheduleRejoin } from './restart.js';

/**
 * The orchestrator: reconciles the specs (desired) with the runtime and store (actual), executes the
 * actions, fails over to an echo when a primary fails, and records every action and observation as a
 * {@link ControlDecision}.
 */
export class ControlPlane {
  readonly decisions: DecisionLog;
  readonly failover: Failover;
  /** Its metrics (served at `GET /metrics`), sampled from this control plane on every scrape. */
  readonly telemetry: Telemetry;
  readonly #options: Required<
    Omit<ControlPlaneOptions, 'spec' | 'runtime' | 'agents' | 'clock' | 'timeouts'>
  > & { spec: LoadedSpec };
  /** The agents of the hosts instances run on: control reaches instances only through them. */
  readonly #agents: AgentRegistry;
  readonly #clock: Clock;
  readonly #timeouts: ControlTimeouts;
  /** The instance records: a cache of the store's `instances/`, kept by list+watch, written by compare-and-set. */
  #records!: InstanceRecords;
  /** One queue of work per service: promotions and serving-set changes never run at once on a service. */
  readonly #work = new KeyedWorkQueue();
  /** Instance writes that failed (each also recorded as an `error` decision). */
  #failedWrites = 0;
  readonly #watchAborts = new Map<string, AbortController>();
  /** The data planes and file syncs of the services (wired at start). */
  readonly #services = new ServiceRegistry();
  #external: ExternalRouting | undefined;
  /** Autoscalers and the desired instance counts of scaled services. */
  #scaling!: ScalingCoordinator;
  readonly #echoes: EchoUpkeep;
  #sampler: NodeJS.Timeout | undefined;
  /** Instances being stopped on purpose (or fenced): their exit is not a failure. */
  readonly #expectedExits = new Set<string>();
  /** Instances being restarted for a failed health check: their exit is a failure. */
  readonly #restarting = new Set<string>();
  readonly #abort = new AbortController();
  readonly #loopDelay = new LoopDelay();
  #cancelTimer: (() => void) | undefined;
  #reconciling = false;
  #again = false;
  #closed = false;
  #started = false;
  #unsubscribeExit: (() => void)[] = [];

  private constructor(options: ControlPlaneOptions, decisions: DecisionLog) {
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
    this.#timeouts = resolveControlTimeouts(timeouts);
    this.decisions = decisions;
    this.telemetry = this.#options.telemetry;
    observeControlPlane(this.telemetry, decisions, {
      services: () => this.services(),
      router: (service) => this.#services.plane(service)?.router.stats(),
      readiness: (id) => this.#echoes.readiness(id),
      eventLoopDelay: () => this.eventLoopDelay(),
    });
    this.failover = new Failover(this.#failoverHost());
    this.#echoes = new EchoUpkeep({
      agents: this.#agents,
      decisions,
      specs: options.spec.spec.services,
      instances: () => this.instances(),
      closed: () => this.#closed,
      failoverBusy: (service) => this.failover.busy(service),
      save: (rec) => this.#save(rec),
      stopInstance: (rec, phase) => this.#stopInstance(rec, phase),
      recreateEcho: (rec, decision) => this.failover.recreateEcho(rec, decision),
      host: this.#options.host,
      candidates: (service) => this.failover.candidates(service),
      services: this.#services,
      switchover: (service, to) => this.switchover(service, to),
    });
  }

  /** Creates the control plane and loads recorded instances from the store (it does not start anything yet). */
  static async create(options: ControlPlaneOptions): Promise<ControlPlane> {
    const clock = options.clock ?? systemClock;
    const decisions = await DecisionLog.create({ store: options.store, now: () => clock.now() });
    const plane = new ControlPlane(options, decisions);
    plane.#records = await InstanceRecords.create({
      store: options.store,
      report: reportRefusals(decisions),
      // Another writer changed an instance: decide again from the store (once this process runs).
      onForeignChange: () => {
        if (plane.#started)
          void plane.reconcileNow().catch((err: unknown) => plane.#recordError('reconcile', err));
      },
      onWatchError: (err) => plane.#recordError('the watch of instance records', err),
    });
    plane.#scaling = await ScalingCoordinator.create(plane.specs, {
      ...plane.#servingHost(),
      store: options.store,
      work: plane.#work,
      failoverBusy: (service) => plane.failover.busy(service),
      reconcileNow: () => plane.reconcileNow(),
      recordError: (where, err) => plane.#recordError(where, err),
      servingCores: (id) => plane.#echoes.servingCores(id),
    });
    return plane;
  }

  /** The services as loaded from the spec file. */
  get specs(): readonly ServiceSpec[] {
    return this.#options.spec.spec.services;
  }

  /** The agent of the host new instances are placed on. */
  get #placement(): Agent {
    return this.#agents.get(this.#options.host);
  }

  get #ctx(): LaunchContext {
    return {
      dataDir: this.#options.dataDir,
      specDir: this.#options.spec.dir,
      host: this.#options.host,
      logMaxBytes: this.#options.logMaxBytes,
    };
  }

  /** Starts the routers and reconciling: instances are started, watched, restarted or failed over. */
  async start(): Promise<void> {
    this.#started = true;
    this.#loopDelay.start();
    this.#unsubscribeExit = this.#agents
      .all()
      .map((a) => a.onExit((handle, exit) => this.#onExit(handle, exit)));
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
      });
    }
    // A promotion the previous control process was killed in the middle of is finished first, so that
    // adoption sees consistent roles and epochs.
    await recoverPromotions(this.#adoptionHost());
    await adoptSurvivors(this.#adoptionHost());
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
      await this.#startRecord(rec, decision);
      return;
    }
    await this.#stopInstance(rec, action.type === 'give-up' ? 'failed' : 'stopped');
    this.decisions.settle(decision, 'ok');
  }

  /** Echoes (and cold echoes) start from a snapshot of the primary; primaries start as they are. */
  async #startRecord(rec: InstanceRecord, decision: ControlDecision): Promise<void> {
    const spec = this.#specOf(rec.service);
    const hasPrimary = [...this.#records.values()].some(
      (r) => r.service === rec.service && r.role === 'primary' && r.id !== rec.id,
    );
    if (rec.role === 'echo' && (hasPrimary || spec.echo.mode === 'cold')) {
      await this.failover.provisionEcho(rec, decision);
      return;
    }
    if (rec.role === 'shadow') {
      if (await this.failover.refuseSharedStateDir(rec, decision)) return;
      await seedShadowState(this.#servingHost(), rec);
    }
    await this.#launch(rec, decision);
  }

  #specOf(name: string): ServiceSpec {
    const spec = this.specs.find((s) => s.name === name);
    if (!spec) throw new UnderstudyError(ErrorCode.NotFound, `no service named '${name}'`);
    return spec;
  }

  /** Starts the process of an instance record; settles the decision with the outcome. */
  async #launch(rec: InstanceRecord, decision: ControlDecision): Promise<void> {
    const spec = this.#specOf(rec.service);
    if (!this.#move(rec, 'launch')) {
      this.decisions.settle(decision, 'failed', `${rec.id} cannot be started from phase '${rec.phase}'`);
      return;
    }
    const agent = this.#agents.of(rec);
    rec.limits = limitsFor(spec, rec.role, (await agent.limitsSupport()).supported);
    delete rec.nextRestartAt;
    delete rec.health;
    this.#expectedExits.delete(rec.id);
    try {
      const handle = await agent.start(buildLaunch(spec, rec, this.#ctx));
      applyHandle(rec, handle);
      if (rec.role === 'primary') {
        rec.epoch = await this.#options.store.epoch(rec.service);
        // The file sync follows one primary: the first of a serving set.
        const other = this.instances().some(
          (i) =>
            i.service === rec.service && i.role === 'primary' && i.id !== rec.id && i.phase === 'running',
        );
        if (!other) await this.#services.files(rec.service)?.setPrimary(rec.stateDir);
      }
      await this.#save(rec);
      this.decisions.settle(decision, 'ok', `pid ${handle.pid}`);
      this.#watch(spec, rec);
      if (!spec.health) this.#markRunning(rec);
    } catch (err) {
      this.#move(rec, 'fail');
      await this.#save(rec);
      this.decisions.settle(decision, 'failed', `${(err as Error).message}`);
    }
  }

  #markRunning(rec: InstanceRecord): void {
    const started = rec.phase === 'starting';
    if (!this.#move(rec, 'ready')) return;
    this.#saveLater(rec);
    if (rec.role === 'echo') return;
    refreshServing(this.#servingHost(), rec.service);
    if (started && this.#scaling.scales(rec.service)) recordColdJoin(this.decisions, rec);
  }

  /** Active health checks (the spec's) and the liveness heartbeat (hang detection) of one instance. */
  #watch(spec: ServiceSpec, rec: InstanceRecord): void {
    this.#watchAborts.get(rec.id)?.abort();
    const abort = new AbortController();
    this.#watchAborts.set(rec.id, abort);
    watchInstance(this.#agents.of(rec), spec, rec, AbortSignal.any([abort.signal, this.#abort.signal]), {
      onHealth: (v) => this.#onHealth(rec, v),
      onHang: (v) => this.#onHang(rec, v),
    });
  }

  #onHealth(rec: InstanceRecord, verdict: HealthVerdict): void {
    if (this.#closed || !['starting', 'running', 'unhealthy'].includes(rec.phase)) return;
    rec.health = {
      healthy: verdict.healthy,
      checkedAt: verdict.checkedAt,
      detail: verdict.last.detail,
      consecutiveFailures: verdict.consecutiveFailures,
    };
    const why = `${verdict.consecutiveFailures} consecutive health checks failed (last: ${verdict.last.detail})`;
    const inputs = { check: verdict.last, consecutiveFailures: verdict.consecutiveFailures };
    if (!verdict.changed) {
      // A serving-set member out of the set for unhealthiness is restarted only if it stays unhealthy.
      if (restartBenched(rec, verdict, this.#specOf(rec.service)))
        this.#killForRestart(rec, 'unhealthy', `${why}; out of the serving set for too long`, inputs);
      return;
    }
    if (verdict.healthy) {
      this.#markRunning(rec);
      this.decisions.record({
        kind: 'healthy',
        service: rec.service,
        instance: rec.id,
        what: `${rec.role} ${rec.id} is healthy`,
        why: `health check passed (${verdict.last.detail}, ${verdict.last.latencyMs.toFixed(1)} ms)`,
        inputs: { check: verdict.last },
        outcome: { status: 'recorded' },
      });
      return;
    }
    this.#move(rec, 'unhealthy');
    this.#saveLater(rec);
    if (benchUnhealthy(this.#servingHost(), rec, why)) return;
    if (
      this.#tryFailover(rec, {
        kind: 'unhealthy',
        detail: why,
        evidence: { check: verdict.last },
        detectedAt: this.#clock.now(),
      })
    )
      return;
    this.#killForRestart(rec, 'unhealthy', why, inputs);
  }

  #onHang(rec: InstanceRecord, verdict: FailureVerdict): void {
    if (this.#closed || !['starting', 'running', 'unhealthy'].includes(rec.phase)) return;
    if (benchHung(this.#servingHost(), rec, verdict, this.#specOf(rec.service))) {
      this.#saveLater(rec);
      return this.#watch(this.#specOf(rec.service), rec);
    }
    const { detail, evidence, at: detectedAt } = verdict;
    if (this.#tryFailover(rec, { kind: 'hang', detail, evidence, detectedAt })) return;
    this.#killForRestart(rec, 'hang', verdict.detail, verdict.evidence, 'SIGKILL');
  }

  /** Fails over when `rec` is the primary, automatic failover is on and an echo can take over. */
  #tryFailover(rec: InstanceRecord, cause: FailoverCause): boolean {
    const spec = this.#specOf(rec.service);
    if (rec.role !== 'primary' || !spec.failover.auto || this.failover.busy(rec.service)) return false;
    // A member of a serving set of several is replaced by the reconciler; the others keep serving.
    const live = (i: InstanceRecord): boolean => i.phase !== 'stopped' && i.phase !== 'failed';
    const peers = this.instances().filter(
      (i) => i.service === rec.service && i.role === 'primary' && live(i),
    );
    if (peers.some((i) => i.id !== rec.id)) return false;
    if (this.failover.candidates(rec.service).length === 0) return false;
    this.#watchAborts.get(rec.id)?.abort();
    void this.failover
      .failover(rec.service, cause)
      .then(() => this.#rejoinLater(rec))
      .catch((err: unknown) => this.#recordError(`failover of ${rec.service}`, err));
    return true;
  }

  /** The fenced old primary comes back as an echo of the new primary, after its restart delay. */
  #rejoinLater(rec: InstanceRecord): void {
    const delay = scheduleRejoin(rec, this.#specOf(rec.service).restart, this.#clock.now(), this.decisions);
    this.#saveLater(rec);
    if (delay === undefined) return;
    this.#clock.setTimer(
      () => void this.reconcileNow().catch((err: unknown) => this.#recordError('reconcile', err)),
      delay,
    );
  }

  #killForRestart(
    rec: InstanceRecord,
    kind: 'unhealthy' | 'hang',
    why: string,
    inputs: Record<string, unknown>,
    signal?: NodeJS.Signals,
  ): void {
    this.#restarting.add(rec.id);
    const grace = this.#specOf(rec.service).stopGrace;
    killForRestart(this.#agents.of(rec), this.decisions, rec, {
      kind,
      why,
      inputs,
      graceMs: grace,
      ...(signal ? { signal } : {}),
    });
  }

  #onExit(handle: InstanceHandle, exit: InstanceExit): void {
    const rec = this.#records.get(handle.instanceId);
    if (!rec || rec.pid !== handle.pid) return;
    this.#watchAborts.get(rec.id)?.abort();
    this.#watchAborts.delete(rec.id);
    rec.lastExit = exit;
    if (this.#expectedExits.delete(rec.id) || this.#closed) return;
    const now = this.#clock.now();
    const forced = this.#restarting.delete(rec.id);
    if (
      !forced &&
      this.#tryFailover(rec, {
        kind: 'crash',
        detail: `${rec.role} exited (${describeExit(rec)})`,
        evidence: { exit },
        detectedAt: now,
        failedAt: exit.at,
      })
    ) {
      return;
    }
    if (rec.role === 'echo') void this.#services.plane(rec.service)?.removeEcho(rec.id);
    else refreshServing(this.#servingHost(), rec.service, rec.id);
    const spec = this.specs.find((s) => s.name === rec.service);
    const delay = applyRestartPolicy(rec, exit, spec?.restart, forced, now, this.decisions);
    if (delay !== undefined) {
      this.#clock.setTimer(
        () => void this.reconcileNow().catch((err: unknown) => this.#recordError('reconcile', err)),
        delay,
      );
    }
    this.#saveLater(rec);
  }

  async #stopInstance(rec: InstanceRecord, phase: 'stopped' | 'failed'): Promise<void> {
    this.#watchAborts.get(rec.id)?.abort();
    this.#expectedExits.add(rec.id);
    // Out of the router first, so that no new request reaches an instance that is stopping.
    if (rec.role !== 'echo') refreshServing(this.#servingHost(), rec.service, rec.id);
    const agent = this.#agents.of(rec);
    const handle = await agent.instance(rec.id);
    if (handle && !handle.exit) await agent.stop(rec.id, { graceMs: this.#specOf(rec.service).stopGrace });
    else this.#expectedExits.delete(rec.id);
    if (rec.role === 'echo') await this.#services.plane(rec.service)?.removeEcho(rec.id);
    this.#move(rec, phase === 'failed' ? 'fail' : 'stop');
    await this.#save(rec);
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
    await this.#stopInstance(rec, 'stopped');
    await this.#startRecord(rec, decision);
    return decision;
  }

  /** Forced failover of a service to its best echo (API/CLI). */
  async forceFailover(service: string, reason: string): Promise<ControlDecision> {
    this.#specOf(service);
    const old = this.instances().find(
      (i) => i.service === service && i.role === 'primary' && i.phase !== 'stopped',
    );
    if (old) this.#watchAborts.get(old.id)?.abort();
    const decision = await this.failover.failover(service, {
      kind: 'forced',
      detail: reason,
      evidence: {},
      detectedAt: this.#clock.now(),
    });
    if (old) this.#rejoinLater(old);
    return decision;
  }

  /** Planned switchover of a service (API/CLI): zero failed requests. */
  async switchover(service: string, to?: string): Promise<ControlDecision> {
    this.#specOf(service);
    return this.failover.switchover(service, to);
  }

  /** Changes an instance's role or phase through the transition table; a refusal is recorded, not applied. */
  #move(rec: InstanceRecord, event: InstanceEvent): boolean {
    return moveInstance(this.decisions, rec, event);
  }

  /** Writes an instance record by compare-and-set (a refused write is re-read and decided again). */
  async #save(rec: InstanceRecord): Promise<void> {
    if (this.#closed && rec.phase !== 'stopped') return;
    await this.#records.save(rec);
  }

  /**
   * A write queued from a synchronous handler (health verdict, exit): writes of one record run in order,
   * and a failed one is counted and recorded as an `error` decision.
   */
  #saveLater(rec: InstanceRecord): void {
    this.#save(rec).catch((err: unknown) => {
      this.#failedWrites++;
      this.#recordError(`writing instance record ${rec.id}`, err);
    });
  }

  /** Instance-record writes that failed since start (each also recorded as an `error` decision). */
  get failedWrites(): number {
    return this.#failedWrites;
  }

  #recordError(where: string, err: unknown): void {
    this.decisions.record({
      kind: 'error',
      service: '',
      what: `${where} failed`,
      why: (err as Error).message,
      inputs: {},
      outcome: { status: 'recorded' },
    });
  }

  #adoptionHost(): AdoptionHost {
    return {
      ...this.#failoverHost(),
      failover: this.failover,
      records: () => [...this.#records.values()],
      specOrUndefined: (name) => this.specs.find((s) => s.name === name),
      watch: (spec, rec) => this.#watch(spec, rec),
      markRunning: (rec) => this.#markRunning(rec),
      stopInstance: (rec, phase) => this.#stopInstance(rec, phase),
    };
  }

  #servingHost(): ServingSetHost {
    return {
      agents: this.#agents,
      clock: this.#clock,
      timeouts: this.#timeouts,
      decisions: this.decisions,
      specOf: (name) => this.#specOf(name),
      instancesOf: (service) => this.instances().filter((i) => i.service === service),
      services: this.#services,
      save: (rec) => this.#save(rec),
    };
  }

  #failoverHost(): FailoverHost {
    return {
      ...this.#servingHost(),
      store: this.#options.store,
      telemetry: this.#options.telemetry,
      work: this.#work,
      expectExit: (id) => this.#expectedExits.add(id),
      launch: (rec, decision) => this.#launch(rec, decision),
      waitReady: (rec, timeoutMs) =>
        waitReady(
          this.#agents.of(rec),
          this.#clock,
          this.#timeouts,
          this.#specOf(rec.service),
          rec,
          timeoutMs,
          reportRefusals(this.decisions),
        ),
      allInstances: () => this.instances(),
    };
  }

  /** Current instances, newest state. */
  instances(): InstanceRecord[] {
    return [...this.#records.values()].sort((a, b) => a.id.localeCompare(b.id, 'en', { numeric: true }));
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
    this.#abort.abort();
    for (const unsubscribe of this.#unsubscribeExit) unsubscribe();
    if (this.#sampler) clearInterval(this.#sampler);
    this.#scaling.close();
    await this.#services.close();
    await this.#external?.close();
    const grace = Math.max(...this.specs.map((s) => s.stopGrace), 0);
    await Promise.all(this.#agents.all().map((a) => a.close({ graceMs: grace })));
    for (const rec of this.#records.values()) {
      if (rec.phase === 'stopped' || rec.phase === 'failed') continue;
      this.#move(rec, 'stop');
      await this.#save(rec);
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
