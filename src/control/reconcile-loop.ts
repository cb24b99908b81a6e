import type { Agent, AgentRegistry, Clock } from '../agent/index.js';
import type { ServiceSpec } from '../config/index.js';
import type { ClusterHosts } from './cluster-hosts.js';
import { recordError, type DecisionLog } from './decision-log.js';
import type { InstanceRecords } from './instance-records.js';
import type { InstanceSupervisor } from './instance-supervisor.js';
import { moveInstance } from './instance-transition.js';
import { newInstanceRecord, nextInstanceId, rehomeRecord, type LaunchContext } from './instance-launch.js';
import type { KeyedWorkQueue } from './keyed-work-queue.js';
import { actionDecision, reconcile, type Action, type DesiredCounts } from './reconcile.js';
import type { InstanceRecord } from './records.js';

/** How long a service and role wait after an instance of theirs failed to start, ms. */
const FAILED_START_PAUSE_MS = 10_000;

/** What a {@link ReconcileLoop} reads and acts through (the control plane's collaborators). */
export interface ReconcileLoopDeps {
  /** The services as currently loaded (a reload changes them in place). */
  specs(): readonly ServiceSpec[];
  /** The instance records (the store's cache): new instances are added here. */
  readonly records: InstanceRecords;
  /** The per-service work queue: a busy service is left alone for a pass. */
  readonly work: KeyedWorkQueue;
  /** Starts and stops the instances the actions name. */
  readonly supervisor: InstanceSupervisor;
  /** Distributed mode: placement, restart gates, overdue hosts; undefined with one host. */
  readonly hosts: ClusterHosts | undefined;
  readonly agents: AgentRegistry;
  readonly clock: Clock;
  readonly decisions: DecisionLog;
  /** Where new instances' directories and logs go. */
  readonly launchContext: LaunchContext;
  /** The agent new instances go on outside distributed mode. */
  placement(): Agent;
  /** The desired instance counts of scaled services. */
  desiredCounts(): ReadonlyMap<string, DesiredCounts>;
  /** Time between two scheduled passes, ms. */
  readonly tickMs: number;
}

/**
 * The reconcile loop (level-triggered): every `tickMs`, and on request, compare the specs and desired
 * counts with the instance records (`reconcile()`, pure) and execute the actions — start, restart,
 * stop, give up — placing new instances (on a host of the cluster in distributed mode). Concurrent
 * requests coalesce into one more pass; a service with a promotion or serving-set change under way is
 * left alone that pass.
 */
export class ReconcileLoop {
  readonly #deps: ReconcileLoopDeps;
  /** When placement last found no host, per service and role: not tried again for a while. */
  readonly #unplaced = new Map<string, number>();
  /** When starting an instance last failed, per service and role: new ones wait {@link FAILED_START_PAUSE_MS}. */
  readonly #failedStart = new Map<string, number>();
  #cancelTimer: (() => void) | undefined;
  #reconciling = false;
  #again = false;
  #closed = false;

  constructor(deps: ReconcileLoopDeps) {
    this.#deps = deps;
  }

  /** Runs a pass now, then one every `tickMs` until {@link close}. */
  async start(): Promise<void> {
    await this.reconcileNow();
    this.#schedule();
  }

  /** Stops scheduling passes; a pass under way stops before its next action. Idempotent. */
  close(): void {
    this.#closed = true;
    this.#cancelTimer?.();
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
        // Instances of a host gone for longer than the replacement delay are re-created elsewhere.
        for (const rec of this.#deps.hosts?.overdue() ?? []) this.#deps.supervisor.markLost(rec);
        // A service with a promotion or serving-set change under way is left alone this pass.
        const specs = this.#deps.specs();
        const busy = new Set(specs.filter((s) => this.#deps.work.busy(s.name)).map((s) => s.name));
        const actions = reconcile(
          specs.filter((s) => !busy.has(s.name)),
          [...this.#deps.records.values()].filter((r) => !busy.has(r.service)),
          this.#deps.clock.now(),
          this.#deps.desiredCounts(),
        );
        for (const action of actions) {
          if (this.#closed) return;
          // A promotion or serving-set change that began during this pass: its service's remaining
          // actions were computed before it and wait for the next pass.
          if (this.#deps.work.busy(action.service)) continue;
          await this.#execute(action);
        }
      } while (this.#again && !this.#closed);
    } finally {
      this.#reconciling = false;
    }
  }

  #schedule(): void {
    if (this.#closed) return;
    this.#cancelTimer = this.#deps.clock.setTimer(() => {
      this.reconcileNow()
        .catch((err: unknown) => recordError(this.#deps.decisions, 'reconcile', err))
        .finally(() => this.#schedule());
    }, this.#deps.tickMs);
  }

  async #execute(action: Action): Promise<void> {
    let rec: InstanceRecord | undefined;
    if (action.type === 'start') {
      const failedAt = this.#failedStart.get(`${action.service}/${action.role}`);
      if (failedAt !== undefined && this.#deps.clock.now() - failedAt < FAILED_START_PAUSE_MS) return;
      const spec = this.#deps.supervisor.specOf(action.service);
      const id = nextInstanceId(this.#deps.records.values(), action.service);
      const agent = this.#placeNew(action.service, action.role, id);
      if (!agent) return;
      rec = await newInstanceRecord(spec, id, action.role, action.slot, this.#deps.launchContext, agent);
      this.#deps.records.add(rec);
    } else {
      rec = this.#deps.records.get(action.instance);
    }
    if (!rec) return;
    if (action.type === 'restart' && this.#deps.hosts) {
      // An instance of a host that is away waits for it; gone for too long, it moves to another host.
      const gate = this.#deps.hosts.restartGate(rec);
      if (gate === 'wait') return;
      if (gate === 'replace' && !(await this.#moveToNewHost(rec))) return;
    }
    const decision = this.#deps.decisions.record(actionDecision(action, rec));
    if (action.type === 'start' || action.type === 'restart') {
      const now = this.#deps.clock.now();
      if (action.type === 'restart') rec.restarts.push(now);
      try {
        await this.#deps.supervisor.startInstance(rec, decision);
      } catch (err) {
        // One instance that cannot start (an echo whose state cannot be copied to its host, an agent
        // that refuses) fails its own decision, not the pass or the control term; it is tried again
        // after a pause, not on every pass.
        if (decision.outcome.status === 'pending')
          this.#deps.decisions.settle(decision, 'failed', (err as Error).message);
        else recordError(this.#deps.decisions, `starting ${rec.id}`, err);
        this.#failedStart.set(`${rec.service}/${rec.role}`, now);
        if (moveInstance(this.#deps.decisions, rec, 'exit')) rec.nextRestartAt = now + FAILED_START_PAUSE_MS;
        await this.#deps.supervisor.save(rec).catch(() => undefined);
      }
      return;
    }
    await this.#deps.supervisor.stopInstance(rec, action.type === 'give-up' ? 'failed' : 'stopped');
    this.#deps.decisions.settle(decision, 'ok');
  }

  /** The agent of the host a new instance goes on: placement's choice (distributed mode), else the one host. */
  #placeNew(service: string, role: InstanceRecord['role'], id: string): Agent | undefined {
    if (!this.#deps.hosts) return this.#deps.placement();
    const key = `${service}/${role}`;
    const refused = this.#unplaced.get(key);
    if (refused !== undefined && this.#deps.clock.now() - refused < 2000) return undefined;
    const decision = this.#deps.hosts.place(service, role, id);
    if (!decision.applied || decision.host === undefined || !this.#deps.agents.has(decision.host)) {
      this.#unplaced.set(key, this.#deps.clock.now());
      return undefined;
    }
    this.#unplaced.delete(key);
    return this.#deps.agents.get(decision.host);
  }

  /** Re-places an instance whose host is gone: a new host, new ports and state directory there. */
  async #moveToNewHost(rec: InstanceRecord): Promise<boolean> {
    const agent = this.#placeNew(rec.service, rec.role, rec.id);
    if (!agent) return false;
    await rehomeRecord(rec, this.#deps.supervisor.specOf(rec.service), this.#deps.launchContext, agent);
    return true;
  }
}
