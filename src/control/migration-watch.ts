import type { ServiceSpec } from '../config/index.js';
import {
  decideMigration,
  initialMigrationState,
  resolveMigrationPolicyOptions,
  type MigrationState,
  type PlacementDecision,
} from '../policy/index.js';
import { AnomalyDetector, migrationReadinessScore } from '../predict/index.js';
import type { InstanceSupervisor } from './instance-supervisor.js';
import type { ControlDecision, InstanceRecord, ControlDecisionKind } from './records.js';

/** What a migration needs of the hosts in distributed mode (`ClusterHosts` is one). */
export interface MigrationHosts {
  /** The host a primary migrates to, recorded as a `place` decision when `record` (else a preview). */
  placeMigration(rec: InstanceRecord, record?: boolean): PlacementDecision;
  /** The host of a new instance of `service` in `role` (the retired primary as an echo), recorded. */
  place(service: string, role: InstanceRecord['role'], instance?: string): PlacementDecision;
}

/** What the migration watch works with. */
export interface MigrationWatchDeps {
  /** The instances, their agents (stats, host facts) and the failover (candidates, switchover). */
  readonly supervisor: InstanceSupervisor;
  readonly specs: readonly ServiceSpec[];
  /** The host instances are placed on (the migration target: a fresh instance on it). */
  readonly host: string;
  /**
   * Distributed mode: placement chooses the target host (never the primary's own, not its echo's while
   * another has room), and the echo to switch to is provisioned there first. @default none (one host)
   */
  readonly hosts?: MigrationHosts;
}

/** Readiness samples in a row the confidence is taken over. */
const CONFIDENCE_SAMPLES = 5;

/**
 * Predictive migration, live (seeds 003, 004): every `migration.interval` each primary of a service with
 * `migration.auto` gets a migration readiness score from its CPU and memory use, the host's disk
 * latency, its restart history and the anomaly detector's score of its CPU series. The confidence is
 * the share of the last five scores past the provision threshold (a sustained score, not a blip). The
 * migration policy's decisions are carried out: `migrate-provision` readies the best echo (the target:
 * a fresh instance on this host), `migrate-switchover` is the planned switchover once it has caught up
 * (no request fails), `migrate-retire` recreates the deposed primary as a fresh echo. Each decision
 * is recorded with the score's components. With several hosts the target host is placement's choice
 * (a recorded `place` decision): an echo already there is the target, else the best echo is moved
 * there (provisioned again from the primary) before the switch; the retired primary becomes an echo
 * where placement puts one.
 */
export class MigrationWatch {
  readonly #states = new Map<string, { service: string; state: MigrationState; target?: string }>();
  readonly #detectors = new Map<string, AnomalyDetector>();
  readonly #recent = new Map<string, number[]>();
  readonly #lastAt = new Map<string, number>();
  #busy = false;

  readonly #supervisor: InstanceSupervisor;
  readonly #specs: readonly ServiceSpec[];
  readonly #host: string;
  readonly #hosts: MigrationHosts | undefined;

  constructor(deps: MigrationWatchDeps) {
    this.#supervisor = deps.supervisor;
    this.#specs = deps.specs;
    this.#host = deps.host;
    this.#hosts = deps.hosts;
  }

  /** Whether the service must be left alone (closing, or a promotion under way). */
  #busyWith(service: string): boolean {
    return this.#supervisor.closed || this.#supervisor.failover.busy(service);
  }

  /** The last readiness score (0..100) sampled for a primary, for the metrics. */
  readiness(instance: string): number | undefined {
    return this.#recent.get(instance)?.at(-1);
  }

  /** Whether any service migrates automatically (else nothing needs sampling). */
  static wanted(specs: readonly ServiceSpec[]): boolean {
    return specs.some((s) => s.migration.auto);
  }

  async tick(now: number): Promise<void> {
    if (this.#busy) return;
    this.#busy = true;
    try {
      // Host facts once per tick and host (the disk latency is a mean since the previous sample).
      const diskMs = new Map<string, number>();
      for (const agent of this.#supervisor.agents.all())
        diskMs.set(agent.host, (await agent.hostFacts().catch(() => undefined))?.diskLatencyMs ?? 0);
      for (const spec of this.#specs) {
        if (!spec.migration.auto || this.#busyWith(spec.name)) continue;
        if (now - (this.#lastAt.get(spec.name) ?? 0) < spec.migration.interval) continue;
        this.#lastAt.set(spec.name, now);
        await this.#service(spec, diskMs, now);
      }
    } finally {
      this.#busy = false;
    }
  }

  async #service(spec: ServiceSpec, diskByHost: ReadonlyMap<string, number>, now: number): Promise<void> {
    const options = resolveMigrationPolicyOptions({
      provisionThreshold: spec.migration.provisionThreshold,
      switchThreshold: spec.migration.switchThreshold,
      cancelBelow: Math.min(40, spec.migration.provisionThreshold),
    });
    const mine = this.#supervisor.instancesOf(spec.name);
    // A migration under way whose primary has been switched away from: retire it.
    for (const [id, m] of this.#states) {
      const rec = mine.find((i) => i.id === id);
      if (m.service !== spec.name || m.state.phase !== 'switching' || !rec || rec.role === 'primary')
        continue;
      const r = decideMigration(options, m.state, this.#signals(rec, 0, 0, 0, true, m.target), now);
      this.#states.set(id, { ...m, state: r.state });
      for (const d of r.decisions) {
        const decision = this.#record(spec, rec, d, {});
        // Several hosts: the deposed primary becomes an echo where placement puts one (off the host it
        // was moved away from, when another has room), not necessarily where it ran.
        const placed = this.#hosts?.place(spec.name, 'echo', rec.id);
        const moveTo =
          placed?.applied && placed.host !== undefined && placed.host !== rec.host ? placed.host : undefined;
        if (moveTo) decision.inputs = { ...decision.inputs, movedFrom: rec.host, movedTo: moveTo };
        await (
          moveTo && this.#supervisor.agents.has(moveTo)
            ? this.#supervisor.relocateEcho(rec, this.#supervisor.agents.get(moveTo), decision)
            : this.#supervisor.recreateEcho(rec, decision)
        ).catch((err: unknown) =>
          this.#supervisor.decisions.settle(decision, 'failed', `${(err as Error).message}`),
        );
      }
    }
    const primaries = mine.filter((i) => i.role === 'primary' && i.phase === 'running');
    if (primaries.length !== 1) return; // a serving set scales; migration moves a lone primary
    const primary = primaries[0]!;
    const stats = await this.#supervisor.agents
      .of(primary)
      .stats(primary.id)
      .catch(() => undefined);
    if (!stats) return;
    const diskMs = diskByHost.get(primary.host) ?? 0;
    const cpu = stats.cpuPercent / (primary.limits.cpu ?? 1);
    const memory = primary.limits.memoryBytes ? (stats.rssBytes / primary.limits.memoryBytes) * 100 : 0;
    let detector = this.#detectors.get(primary.id);
    if (!detector) this.#detectors.set(primary.id, (detector = new AnomalyDetector()));
    const anomaly = detector.update(now, cpu).score;
    const failureRate = Math.min(1, primary.restarts.length / Math.max(1, spec.restart.maxRestarts));
    const readiness = migrationReadinessScore({
      cpuUtilization: cpu,
      memoryUtilization: memory,
      diskIoLatencyMs: diskMs,
      historicalFailureRate: failureRate,
      predictedFailureProbability: anomaly,
    });
    const recent = [...(this.#recent.get(primary.id) ?? []), readiness.score].slice(-CONFIDENCE_SAMPLES);
    this.#recent.set(primary.id, recent);
    const confidence = recent.filter((x) => x >= options.provisionThreshold).length / CONFIDENCE_SAMPLES;
    const m = this.#states.get(primary.id) ?? { service: spec.name, state: initialMigrationState(now) };
    const candidates = this.#supervisor.failover.candidates(spec.name);
    // Several hosts: where placement would move the primary (a preview; recorded once provisioning starts).
    // The target is kept once a migration is under way; while idle it is chosen afresh each sample.
    const pinned = m.state.phase === 'idle' ? undefined : m.target;
    const preview = !pinned && this.#hosts ? this.#hosts.placeMigration(primary, false) : undefined;
    const targetHost = preview?.applied ? preview.host : undefined;
    const target = pinned
      ? mine.find((i) => i.id === pinned)
      : (candidates.find((c) => c.host === targetHost) ?? candidates[0]);
    const synced =
      target !== undefined &&
      target.phase === 'running' &&
      (targetHost === undefined || target.host === targetHost) &&
      this.#supervisor.services.caughtUp(spec.name, target);
    const usage = Math.max(cpu, memory) / 100;
    const r = decideMigration(
      options,
      m.state,
      this.#signals(primary, readiness.score, confidence, usage, false, target?.id, synced, targetHost),
      now,
    );
    this.#states.set(primary.id, {
      service: spec.name,
      state: r.state,
      ...(target && r.state.phase !== 'idle' ? { target: target.id } : {}),
    });
    const inputs = {
      readiness: readiness.score,
      components: readiness.contributions,
      cpuPercent: cpu,
      memoryPercent: memory,
      diskIoLatencyMs: diskMs,
      failureRate,
      anomaly,
      confidence,
      target: target?.id,
    };
    for (const d of r.decisions) {
      const decision = this.#record(spec, primary, d, inputs);
      if (d.kind === 'migrate-switchover' && target) {
        await this.#supervisor.failover
          .switchover(spec.name, target.id)
          .then(() => this.#supervisor.decisions.settle(decision, 'ok', `${target.id} serves`))
          .catch((err: unknown) =>
            this.#supervisor.decisions.settle(decision, 'failed', `${(err as Error).message}`),
          );
      } else if (d.kind === 'migrate-provision' && target && this.#hosts) {
        await this.#provisionOnTarget(this.#hosts, primary, target, decision);
      } else if (d.kind === 'migrate-provision' && !target) {
        this.#supervisor.decisions.settle(decision, 'failed', 'no echo to migrate to (echo.count is 0)');
        this.#states.set(primary.id, { service: spec.name, state: initialMigrationState(now) });
      } else {
        this.#supervisor.decisions.settle(decision, 'ok', target ? `target ${target.id}` : undefined);
      }
    }
  }

  /**
   * Seed 004's pre-provisioning on a target host: placement chooses the host (recorded); the echo
   * `target` serves as the target if it runs there, else it is moved there first. Settles `decision`.
   */
  async #provisionOnTarget(
    hosts: MigrationHosts,
    primary: InstanceRecord,
    target: InstanceRecord,
    decision: ControlDecision,
  ): Promise<void> {
    const settle = this.#supervisor.decisions.settle.bind(this.#supervisor.decisions);
    const placed = hosts.placeMigration(primary);
    decision.inputs = {
      ...decision.inputs,
      placement: { host: placed.host, zone: placed.zone, reason: placed.reason },
    };
    if (!placed.applied || placed.host === undefined || !this.#supervisor.agents.has(placed.host)) {
      settle(decision, 'ok', `target ${target.id} on ${target.host} (no other host: ${placed.reason})`);
      return;
    }
    if (target.host === placed.host) {
      settle(decision, 'ok', `target ${target.id}, already on ${placed.host}`);
      return;
    }
    const from = target.host;
    decision.inputs = { ...decision.inputs, movedFrom: from };
    await this.#supervisor
      .relocateEcho(target, this.#supervisor.agents.get(placed.host), decision)
      .catch((err: unknown) => settle(decision, 'failed', `${(err as Error).message}`));
  }

  #signals(
    rec: InstanceRecord,
    readiness: number,
    confidence: number,
    usage: number,
    switchedOver: boolean,
    target?: string,
    echoSynced = false,
    host = this.#host,
  ): Parameters<typeof decideMigration>[2] {
    return {
      instance: rec.id,
      readiness,
      confidence,
      usage,
      targetHost: target ? `${host} (${target})` : host,
      echoSynced,
      switchedOver,
    };
  }

  #record(
    spec: ServiceSpec,
    rec: InstanceRecord,
    d: { kind: ControlDecisionKind; reason: string },
    inputs: Record<string, unknown>,
  ): ControlDecision {
    return this.#supervisor.decisions.record({
      kind: d.kind,
      service: spec.name,
      instance: rec.id,
      what: `${d.kind.replace('migrate-', 'migration: ')} (${rec.id})`,
      why: d.reason,
      inputs,
      outcome: { status: 'pending' },
    });
  }
}
