import type { Agent, AgentRegistry, Clock, InstanceExit, InstanceHandle } from '../agent/index.js';
import type { ServiceSpec } from '../config/index.js';
import { ErrorCode, UnderstudyError } from '../errors/index.js';
import type { FailureVerdict, HealthVerdict } from '../health/index.js';
import type { StateStore } from '../store/index.js';
import type { PromotionObserver } from '../telemetry/index.js';
import type { AdoptionHost } from './adoption.js';
import { ServiceAutoscaler } from './autoscaler.js';
import type { ControlTimeouts } from './control-plane-options.js';
import { recordError, type DecisionLog } from './decision-log.js';
import { Failover, type FailoverCause } from './failover.js';
import { applyHandle, buildLaunch, limitsFor, rehomeRecord, type LaunchContext } from './instance-launch.js';
import type { InstanceRecords } from './instance-records.js';
import { moveInstance, reportRefusals, type InstanceEvent } from './instance-transition.js';
import { waitReady, watchInstance } from './instance-watch.js';
import type { KeyedWorkQueue } from './keyed-work-queue.js';
import type { Maintenance, PendingFailover } from './maintenance.js';
import { describeExit } from './reconcile.js';
import type { ProfileManager } from './profile-manager.js';
import type { ControlDecision, InstanceRecord } from './records.js';
import { applyRestartPolicy, killForRestart, scheduleRejoin } from './restart.js';
import type { ServiceRegistry } from './service-registry.js';
import {
  benchHung,
  benchUnhealthy,
  recordColdJoin,
  refreshServing,
  refreshWarmReads,
  restartBenched,
  seedShadowState,
  type FeedListener,
} from './serving-set.js';

/** What asks for a reconcile pass when a restart or rejoin delay ends (the control plane). */
export interface Reconciler {
  reconcileNow(): Promise<void>;
}

/** One instance's watch: how it ends, the agent it was asked of, the spec it was made from. */
interface InstanceWatchEntry {
  readonly abort: AbortController;
  readonly agent: Agent;
  readonly spec: ServiceSpec;
}

/** The typed dependencies of an {@link InstanceSupervisor}. */
export interface InstanceSupervisorDeps {
  /** The instance records (the store's `instances/`): read from here, written by compare-and-set. */
  readonly records: InstanceRecords;
  readonly decisions: DecisionLog;
  /** The agents of the hosts instances run on: the only way to reach an instance. */
  readonly agents: AgentRegistry;
  readonly clock: Clock;
  readonly timeouts: ControlTimeouts;
  /** The store (a service's epoch, promotion intents). */
  readonly store: StateStore;
  readonly specs: readonly ServiceSpec[];
  /** The data planes and file syncs of the services. */
  readonly services: ServiceRegistry;
  /** Where instances' directories and logs go. */
  readonly launchContext: LaunchContext;
  /** Where promotions and their durations are reported. */
  readonly telemetry: PromotionObserver;
  /** The per-service work queue (a promotion holds its service). */
  readonly work: KeyedWorkQueue;
  readonly reconciler: Reconciler;
  /** Paused services: their automatic failover is recorded as `skipped`, not carried out. */
  readonly maintenance?: Maintenance;
  /** Sizes new echoes and shadows from the service's profile (else the spec's fixed fractions). */
  readonly profiles?: Pick<ProfileManager, 'sizing'>;
}

/**
 * Watches and reacts to each instance: starts its process, watches its health and heartbeat, and on a
 * failure benches it, fails over to an echo ({@link Failover}, which it owns) or restarts it; stops
 * instances on purpose. It is the one writer of instance records besides the reconciler's new ones, and
 * the {@link AdoptionHost} (hence failover and serving-set host) the other collaborators work through.
 */
export class InstanceSupervisor implements AdoptionHost {
  readonly agents: AgentRegistry;
  readonly clock: Clock;
  readonly timeouts: ControlTimeouts;
  readonly decisions: DecisionLog;
  readonly store: StateStore;
  readonly services: ServiceRegistry;
  /** Promotion of echoes when a primary fails, and planned switchovers. */
  readonly failover: Failover;
  /** Told which shadow fed a new serving instance (set by the control plane). */
  recycler: FeedListener | undefined;
  readonly #deps: InstanceSupervisorDeps;
  /** The live watch of each watched instance (removed when it ends): its abort, agent and spec. */
  readonly #watches = new Map<string, InstanceWatchEntry>();
  /** Instances being stopped on purpose (or fenced): their exit is not a failure. */
  readonly #expectedExits = new Set<string>();
  /** Instances being restarted for a failed health check: their exit is a failure. */
  readonly #restarting = new Set<string>();
  readonly #abort = new AbortController();
  #unsubscribeExit: (() => void)[] = [];
  #failedWrites = 0;
  #closed = false;

  constructor(deps: InstanceSupervisorDeps) {
    this.#deps = deps;
    this.agents = deps.agents;
    this.clock = deps.clock;
    this.timeouts = deps.timeouts;
    this.decisions = deps.decisions;
    this.store = deps.store;
    this.services = deps.services;
    this.failover = new Failover(this, { telemetry: deps.telemetry, work: deps.work });
  }

  /** Whether {@link close} was called: nothing is reacted to any more. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Instance-record writes that failed since start (each also recorded as an `error` decision). */
  get failedWrites(): number {
    return this.#failedWrites;
  }

  /** Starts following the exits of instances on every agent, and the agents that take a host's place. */
  start(): void {
    // Through the registry: agents that join later (distributed mode's hosts) are followed too.
    this.#unsubscribeExit = [
      this.agents.onExit((handle, exit) => this.#onExit(handle, exit)),
      this.agents.onAgent((agent) => this.#agentChanged(agent)),
    ];
  }

  /** Stops watching and reacting (the instances themselves are stopped by the caller). */
  close(): void {
    this.#closed = true;
    this.#abort.abort();
    for (const unsubscribe of this.#unsubscribeExit) unsubscribe();
  }

  specOf(name: string): ServiceSpec {
    const spec = this.specOrUndefined(name);
    if (!spec) throw new UnderstudyError(ErrorCode.NotFound, `no service named '${name}'`);
    return spec;
  }

  specOrUndefined(name: string): ServiceSpec | undefined {
    return this.#deps.specs.find((s) => s.name === name);
  }

  /** Every known instance record, in store order. */
  records(): InstanceRecord[] {
    return [...this.#deps.records.values()];
  }

  /** Current instances, newest state, sorted by id. */
  allInstances(): InstanceRecord[] {
    return this.records().sort((a, b) => a.id.localeCompare(b.id, 'en', { numeric: true }));
  }

  instancesOf(service: string): InstanceRecord[] {
    return this.allInstances().filter((i) => i.service === service);
  }

  /** Writes an instance record by compare-and-set (a refused write is re-read and decided again). */
  async save(rec: InstanceRecord): Promise<void> {
    if (this.#closed && rec.phase !== 'stopped') return;
    await this.#deps.records.save(rec);
  }

  /**
   * A write queued from a synchronous handler (health verdict, exit): writes of one record run in order,
   * and a failed one is counted and recorded as an `error` decision.
   */
  saveLater(rec: InstanceRecord): void {
    this.save(rec).catch((err: unknown) => {
      this.#failedWrites++;
      recordError(this.decisions, `writing instance record ${rec.id}`, err);
    });
  }

  /** Marks an instance as stopped on purpose: its exit is not a failure. */
  expectExit(id: string): void {
    this.#expectedExits.add(id);
  }

  /** Where instances run: the cwd of an external echo's hooks. */
  get launchContext(): LaunchContext {
    return this.#deps.launchContext;
  }

  /** Resolves once the instance answers (health check or port), or false on timeout. */
  waitReady(rec: InstanceRecord, timeoutMs: number): Promise<boolean> {
    const spec = this.specOf(rec.service);
    const refusals = reportRefusals(this.decisions);
    return waitReady(this.agents.of(rec), this.clock, this.timeouts, spec, rec, timeoutMs, refusals);
  }

  /** Echoes (and cold echoes) start from a snapshot of the primary; primaries start as they are. */
  async startInstance(rec: InstanceRecord, decision: ControlDecision): Promise<void> {
    const spec = this.specOf(rec.service);
    const hasPrimary = this.records().some(
      (r) => r.service === rec.service && r.role === 'primary' && r.id !== rec.id,
    );
    if (rec.role === 'echo' && (hasPrimary || spec.echo.mode === 'cold')) {
      await this.failover.provisionEcho(rec, decision);
      return;
    }
    if (rec.role === 'shadow') {
      if (await this.failover.refuseSharedStateDir(rec, decision)) return;
      await seedShadowState(this, rec);
    }
    await this.launch(rec, decision);
  }

  /** Starts the process of an instance record; settles the decision with the outcome. */
  async launch(rec: InstanceRecord, decision: ControlDecision): Promise<void> {
    const spec = this.specOf(rec.service);
    if (!this.#move(rec, 'launch')) {
      this.decisions.settle(decision, 'failed', `${rec.id} cannot be started from phase '${rec.phase}'`);
      return;
    }
    const agent = this.agents.of(rec);
    const supported = (await agent.limitsSupport()).supported;
    const profiles = this.#deps.profiles;
    if (profiles && rec.role !== 'primary') {
      // Seed 001: a profile with enough data for this hour sizes echoes and shadows; the decision says which.
      const serving = this.allInstances().filter(
        (i) => i.service === rec.service && i.role === 'primary' && i.phase === 'running',
      ).length;
      const sized = profiles.sizing(spec, rec.role, supported, serving, this.clock.now());
      rec.limits = sized.limits;
      decision.inputs = { ...decision.inputs, sizing: { source: sized.source, detail: sized.detail } };
    } else rec.limits = limitsFor(spec, rec.role, supported);
    delete rec.nextRestartAt;
    delete rec.health;
    this.#expectedExits.delete(rec.id);
    try {
      const handle = await agent.start(buildLaunch(spec, rec, this.#deps.launchContext));
      applyHandle(rec, handle);
      if (rec.role === 'primary') {
        rec.epoch = await this.store.epoch(rec.service);
        // The file sync follows one primary: the first of a serving set.
        const other = this.allInstances().some(
          (i) =>
            i.service === rec.service && i.role === 'primary' && i.id !== rec.id && i.phase === 'running',
        );
        if (!other) await this.services.files(rec.service)?.setPrimary(rec.stateDir);
      }
      await this.save(rec);
      this.decisions.settle(decision, 'ok', `pid ${handle.pid}`);
      this.watch(spec, rec);
      if (!spec.health) this.markRunning(rec);
    } catch (err) {
      this.#move(rec, 'fail');
      await this.save(rec);
      this.decisions.settle(decision, 'failed', `${(err as Error).message}`);
    }
  }

  markRunning(rec: InstanceRecord): void {
    const started = rec.phase === 'starting';
    if (!this.#move(rec, 'ready')) return;
    this.saveLater(rec);
    if (rec.role === 'echo') {
      refreshWarmReads(this, rec.service);
      return;
    }
    refreshServing(this, rec.service);
    if (started && ServiceAutoscaler.wanted(this.specOf(rec.service))) recordColdJoin(this.decisions, rec);
  }

  /**
   * Active health checks (the spec's) and the liveness heartbeat (hang detection) of one instance, asked
   * of the agent of its host. A verdict of a watch that was ended since (replaced, or moved to another
   * agent of the host) is ignored, even one already on its way.
   */
  watch(spec: ServiceSpec, rec: InstanceRecord): void {
    this.unwatch(rec.id);
    if (this.#closed) return;
    const agent = this.agents.of(rec);
    const abort = new AbortController();
    this.#watches.set(rec.id, { abort, agent, spec });
    const live = (): boolean => !abort.signal.aborted;
    watchInstance(agent, spec, rec, AbortSignal.any([abort.signal, this.#abort.signal]), {
      onHealth: (v) => {
        if (live()) this.#onHealth(rec, v);
      },
      onHang: (v) => {
        if (live()) this.#onHang(rec, v);
      },
    });
  }

  /** Stops the health checks and heartbeat watch of an instance. */
  unwatch(id: string): void {
    this.#watches.get(id)?.abort.abort();
    this.#watches.delete(id);
  }

  /**
   * Another agent serves a host now (distributed mode: its agent restarted on a new API address, or
   * registered again after its record lapsed): the watches of that host's instances, asked of the
   * agent before, end and are asked of this one — once per agent, and only by a supervisor that still
   * acts (a control term that ended watches nothing).
   */
  #agentChanged(agent: Agent): void {
    if (this.#closed) return;
    const moved = [...this.#watches].filter(([, w]) => w.agent !== agent);
    for (const [id, w] of moved) {
      const rec = this.#deps.records.get(id);
      if (!rec || rec.host !== agent.host) continue;
      this.watch(w.spec, rec);
    }
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
      if (restartBenched(rec, verdict, this.specOf(rec.service)))
        this.#killForRestart(rec, 'unhealthy', `${why}; out of the serving set for too long`, inputs);
      return;
    }
    if (verdict.healthy) {
      this.markRunning(rec);
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
    this.saveLater(rec);
    if (benchUnhealthy(this, rec, why)) return;
    const cause = { kind: 'unhealthy' as const, detail: why, evidence: { check: verdict.last } };
    if (this.#tryFailover(rec, { ...cause, detectedAt: this.clock.now() })) return;
    this.#killForRestart(rec, 'unhealthy', why, inputs);
  }

  #onHang(rec: InstanceRecord, verdict: FailureVerdict): void {
    if (this.#closed || !['starting', 'running', 'unhealthy'].includes(rec.phase)) return;
    if (benchHung(this, rec, verdict, this.specOf(rec.service))) {
      this.saveLater(rec);
      return this.watch(this.specOf(rec.service), rec);
    }
    const { detail, evidence, at: detectedAt } = verdict;
    if (this.#tryFailover(rec, { kind: 'hang', detail, evidence, detectedAt })) return;
    this.#killForRestart(rec, 'hang', verdict.detail, verdict.evidence, 'SIGKILL');
  }

  /**
   * An instance of a host gone for good (its lease lapsed long ago): out of the data plane, marked
   * exited so that the reconciler starts it again — on another host (`ClusterHosts.restartGate`).
   */
  markLost(rec: InstanceRecord): void {
    if (this.#closed || (rec.role === 'primary' && this.failover.busy(rec.service))) return;
    this.unwatch(rec.id);
    if (rec.role === 'echo') {
      void this.services.plane(rec.service)?.removeEcho(rec.id);
      void this.services
        .files(rec.service)
        ?.removeEcho(rec.id)
        .catch(() => undefined);
      refreshWarmReads(this, rec.service, rec.id);
    } else refreshServing(this, rec.service, rec.id);
    if (!this.#move(rec, 'exit')) return;
    rec.nextRestartAt = this.clock.now();
    this.saveLater(rec);
  }

  /**
   * A primary whose host is lost (suspected by the heartbeats or its lease lapsed): failed over as a
   * crash would be, to `to` when that echo can take over. Returns whether a failover began.
   */
  primaryLost(rec: InstanceRecord, cause: FailoverCause, to?: string): boolean {
    if (this.#closed || !['starting', 'running', 'unhealthy'].includes(rec.phase)) return false;
    const target = to && this.failover.candidates(rec.service).some((c) => c.id === to) ? to : undefined;
    return this.#tryFailover(rec, cause, target);
  }

  /** Fails over when `rec` is the primary, automatic failover is on and an echo can take over. */
  #tryFailover(rec: InstanceRecord, cause: FailoverCause, to?: string): boolean {
    const spec = this.specOf(rec.service);
    if (rec.role !== 'primary' || !spec.failover.auto || this.failover.busy(rec.service)) return false;
    // A member of a serving set of several is replaced by the reconciler; the others keep serving.
    const live = (i: InstanceRecord): boolean => i.phase !== 'stopped' && i.phase !== 'failed';
    const peers = this.instancesOf(rec.service).filter((i) => i.role === 'primary' && live(i));
    if (peers.some((i) => i.id !== rec.id)) return false;
    const candidates = this.failover.candidates(rec.service);
    if (candidates.length === 0) return false;
    const maintenance = this.#deps.maintenance;
    if (maintenance?.isPaused(rec.service)) {
      maintenance.skipFailover(
        rec.service,
        rec.id,
        cause,
        candidates.map((c) => c.id),
      );
      return false;
    }
    this.unwatch(rec.id);
    void this.failover
      .failover(rec.service, cause, to)
      .then(() => this.rejoinLater(rec))
      .catch((err: unknown) => {
        recordError(this.decisions, `failover of ${rec.service}`, err);
        return this.#afterFailedFailover(rec, cause);
      })
      .catch((err: unknown) => recordError(this.decisions, `restart of ${rec.id} in place`, err));
    return true;
  }

  /**
   * No echo could take over (every candidate failed, or none was left): the failed primary is handled
   * as if no echo existed — restarted in place under the restart policy, at the service's current epoch
   * (a promotion that failed after its compare-and-set has moved it) — so that the service is not left
   * without a primary until an operator acts. A lost host's primary waits for its host (`markLost`).
   */
  async #afterFailedFailover(rec: InstanceRecord, cause: FailoverCause): Promise<void> {
    if (this.#closed || rec.role !== 'primary' || cause.kind === 'host') return;
    if (!['starting', 'running', 'unhealthy'].includes(rec.phase)) return;
    const serving = this.instancesOf(rec.service).some(
      (i) => i !== rec && i.role === 'primary' && (i.phase === 'running' || i.phase === 'starting'),
    );
    if (serving) return;
    const handle = await this.agents
      .of(rec)
      .instance(rec.id)
      .catch(() => undefined);
    if (handle && !handle.exit && handle.pid === rec.pid) {
      // Still running (hung, unhealthy, or the failover was forced): killed, then restarted.
      const why = `no echo could take over after ${cause.kind}: ${cause.detail}`;
      this.#killForRestart(rec, cause.kind === 'hang' ? 'hang' : 'unhealthy', why, {}, 'SIGKILL');
      return;
    }
    refreshServing(this, rec.service, rec.id);
    const exit: InstanceExit = handle?.exit ??
      rec.lastExit ?? { code: null, signal: 'SIGKILL', at: this.clock.now() };
    rec.lastExit = exit;
    const delay = applyRestartPolicy(
      rec,
      exit,
      this.specOrUndefined(rec.service)?.restart,
      false,
      this.clock.now(),
      this.decisions,
    );
    if (delay !== undefined) this.#reconcileIn(delay);
    this.saveLater(rec);
  }

  /**
   * Carries out a failover skipped while the service was paused, if its primary is still down (not
   * running again after a restart in place). Returns whether a failover began.
   */
  resumeFailover(pending: PendingFailover): boolean {
    const rec = this.#deps.records.get(pending.instance);
    if (!rec || rec.role !== 'primary' || rec.phase === 'running' || rec.phase === 'starting') return false;
    return this.#tryFailover(rec, pending.cause);
  }

  /** The fenced old primary comes back as an echo of the new primary, after its restart delay. */
  rejoinLater(rec: InstanceRecord): void {
    const delay = scheduleRejoin(rec, this.specOf(rec.service).restart, this.clock.now(), this.decisions);
    this.saveLater(rec);
    if (delay !== undefined) this.#reconcileIn(delay);
  }

  #reconcileIn(delayMs: number): void {
    this.clock.setTimer(
      () =>
        void this.#deps.reconciler
          .reconcileNow()
          .catch((err: unknown) => recordError(this.decisions, 'reconcile', err)),
      delayMs,
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
    const grace = this.specOf(rec.service).stopGrace;
    killForRestart(this.agents.of(rec), this.decisions, rec, {
      kind,
      why,
      inputs,
      graceMs: grace,
      ...(signal ? { signal } : {}),
    });
  }

  #onExit(handle: InstanceHandle, exit: InstanceExit): void {
    const rec = this.#deps.records.get(handle.instanceId);
    if (!rec || rec.pid !== handle.pid) return;
    this.unwatch(rec.id);
    rec.lastExit = exit;
    if (this.#expectedExits.delete(rec.id) || this.#closed) return;
    const now = this.clock.now();
    const forced = this.#restarting.delete(rec.id);
    const detail = `${rec.role} exited (${describeExit(rec)})`;
    const cause = { kind: 'crash' as const, detail, evidence: { exit }, detectedAt: now, failedAt: exit.at };
    if (!forced && this.#tryFailover(rec, cause)) return;
    if (rec.role === 'echo') {
      void this.services.plane(rec.service)?.removeEcho(rec.id);
      refreshWarmReads(this, rec.service, rec.id);
    } else refreshServing(this, rec.service, rec.id);
    const spec = this.specOrUndefined(rec.service);
    const delay = applyRestartPolicy(rec, exit, spec?.restart, forced, now, this.decisions);
    if (delay !== undefined) this.#reconcileIn(delay);
    this.saveLater(rec);
  }

  /** Stops an instance on purpose (out of the router first), then marks it stopped or failed. */
  async stopInstance(rec: InstanceRecord, phase: 'stopped' | 'failed'): Promise<void> {
    this.unwatch(rec.id);
    this.#expectedExits.add(rec.id);
    // Out of the router first, so that no new request reaches an instance that is stopping.
    if (rec.role !== 'echo') refreshServing(this, rec.service, rec.id);
    else refreshWarmReads(this, rec.service, rec.id);
    const agent = this.agents.of(rec);
    const handle = await agent.instance(rec.id);
    if (handle && !handle.exit) await agent.stop(rec.id, { graceMs: this.specOf(rec.service).stopGrace });
    else this.#expectedExits.delete(rec.id);
    if (rec.role === 'echo') await this.services.plane(rec.service)?.removeEcho(rec.id);
    this.#move(rec, phase === 'failed' ? 'fail' : 'stop');
    await this.save(rec);
  }

  /**
   * Moves an echo to the host of `agent` (seed 004: the migration target, provisioned before the
   * switch): stops it, gives it ports and a state directory there, and provisions it again from the
   * primary. Runs on the service's work queue, so the reconciler does not replace it meanwhile.
   */
  async relocateEcho(rec: InstanceRecord, agent: Agent, decision: ControlDecision): Promise<void> {
    await this.#deps.work.run(rec.service, 'relocate', async () => {
      await this.stopInstance(rec, 'stopped');
      await rehomeRecord(rec, this.specOf(rec.service), this.#deps.launchContext, agent);
      await this.failover.recreateEcho(rec, decision);
    });
  }

  /** Stops an echo and provisions it again from a full copy of the primary; settles `decision`. */
  async recreateEcho(rec: InstanceRecord, decision: ControlDecision): Promise<void> {
    await this.stopInstance(rec, 'stopped');
    await this.failover.recreateEcho(rec, decision);
  }

  /** Changes an instance's role or phase through the transition table; a refusal is recorded, not applied. */
  #move(rec: InstanceRecord, event: InstanceEvent): boolean {
    return moveInstance(this.decisions, rec, event);
  }
}
