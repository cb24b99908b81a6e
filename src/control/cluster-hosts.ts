// The hosts of distributed mode as control sees them: their records (capacity, zone), their state
// (up, suspected by the heartbeats' phi-accrual detector, down once their lease lapsed), placement of
// new instances by the pure policy, and the reaction to a lost host.
import { restartWindow, type HostRecord } from '../agent/index.js';
import type { ServiceSpec } from '../config/index.js';
import { HostHeartbeats, type HostSuspicion } from '../health/index.js';
import {
  place,
  planHostLoss,
  type PlacementDecision,
  type PlacementHost,
  type PlacementHostState,
  type PlacementInstance,
  type PlacementRequest,
} from '../policy/index.js';
import type { DecisionLog } from './decision-log.js';
import { limitsFor } from './instance-launch.js';
import type { ControlDecision, InstanceRecord, InstanceRole } from './records.js';
import type { ClusterHostsOptions, HostDirectory, HostLossHandler } from './cluster-hosts-types.js';

export {
  hostDirectoryOf,
  type ClusterHostsOptions,
  type HostDirectory,
  type HostLossHandler,
} from './cluster-hosts-types.js';

/** A failover held until a suspected host's self-fence deadline (or its lease's lapse). */
interface FenceWait {
  decision: ControlDecision;
  timer?: NodeJS.Timeout;
  why: string;
  evidence: Record<string, unknown>;
}

const roleOf = (rec: InstanceRecord): PlacementInstance['role'] => rec.role;

/** A host whose agent restarts (planned): held until `until`, its decision settled when it ends. */
interface PlannedRestart {
  until: number;
  decision: ControlDecision;
  timer: NodeJS.Timeout;
  /** The heartbeats' suspicion seen (and held) during the window, if any. */
  suspicion?: HostSuspicion;
}

/**
 * Host states, placement and host loss in distributed mode. Heartbeats say a host is probably gone
 * (suspected: its primaries fail over at once, their echoes elsewhere take over); the store's lease says
 * it is gone (down: the same, and after {@link ClusterHostsOptions.replaceAfterMs} its instances are
 * re-created on other hosts). Every placement and every loss is a recorded decision with its reason.
 */
export class ClusterHosts {
  readonly #downSince = new Map<string, number>();
  /** Shadows of a lost host to re-create elsewhere at once (they hold nothing that must wait for the host). */
  readonly #shadowsToMove = new Set<string>();
  /** Hosts whose agent restarts (planned), by host. */
  readonly #restarts = new Map<string, PlannedRestart>();
  /** Hosts suspected while restarting: their recovery is no host coming back (nothing was lost). */
  readonly #heldSuspicion = new Set<string>();
  readonly #heartbeats: HostHeartbeats;
  readonly #unsubscribe: () => void;
  readonly #replaceAfter: number;
  /** Failovers of suspected hosts' primaries waiting for their self-fence deadline, by host. */
  readonly #fenceWaits = new Map<string, FenceWait>();

  constructor(
    private readonly directory: HostDirectory,
    private readonly deps: {
      decisions: DecisionLog;
      now: () => number;
      records: () => InstanceRecord[];
      specOf: (service: string) => ServiceSpec | undefined;
      /** The host a service's file sync runs on, when it has one: its instances stay there. */
      fileSyncHost: (service: string) => string | undefined;
      loss: HostLossHandler;
    },
    private readonly options: ClusterHostsOptions = {},
  ) {
    this.#replaceAfter = options.replaceAfterMs ?? 15_000;
    this.#heartbeats = new HostHeartbeats(options.heartbeat ?? {}, {
      onSuspect: (s) => this.#suspected(s),
      onRecover: (host) => {
        this.#fenceWaitEnded(host, 'back');
        if (!this.#heldSuspicion.delete(host)) this.#recovered(host, 'answers heartbeats again');
      },
    });
    for (const r of directory.records()) {
      this.#follow(r);
      this.#restartMark(r);
    }
    this.#unsubscribe = directory.onHostChange((change, host, record) => {
      if (change === 'up' && record) {
        this.#follow(record);
        this.#restartMark(record);
        if (this.#downSince.delete(host)) this.#recovered(host, 'registered again (a new lease)');
      } else if (change === 'down') {
        this.#fenceWaitEnded(host, 'lapsed');
        this.#restartEnded(host, 'lapsed');
        this.#heartbeats.delete(host);
        this.#heldSuspicion.delete(host);
        if (!this.#downSince.has(host)) this.#downSince.set(host, this.deps.now());
        this.#lost(host, 'lease');
      }
    });
  }

  start(): void {
    this.#heartbeats.start();
  }

  close(): void {
    this.#heartbeats.stop();
    this.#unsubscribe();
    for (const r of this.#restarts.values()) clearTimeout(r.timer);
    this.#restarts.clear();
    for (const w of this.#fenceWaits.values()) clearTimeout(w.timer);
    this.#fenceWaits.clear();
  }

  /** Whether the failover of `host`'s primaries waits for its self-fence deadline (or lease lapse) now. */
  fenceWaiting(host: string): boolean {
    return this.#fenceWaits.has(host);
  }

  /** Whether `host`'s agent is in a planned restart window now. */
  restarting(host: string): boolean {
    return this.#restarts.has(host);
  }

  /** A suspicion from the heartbeats: held while the host restarts (planned), else the host is lost. */
  #suspected(s: HostSuspicion): void {
    const restart = this.#restarts.get(s.host);
    if (restart) {
      restart.suspicion = s;
      this.#heldSuspicion.add(s.host);
      return;
    }
    this.#lost(s.host, 'suspected', s);
  }

  /**
   * A host record seen: marked `restartingUntil` (its agent stopped for a planned restart and its
   * instances run on), the host is held until then — one `host-restart` decision with the window;
   * unmarked while held, its agent is back (the decision settles `ok`).
   */
  #restartMark(r: HostRecord): void {
    const now = this.deps.now();
    const until = restartWindow(r, now);
    const held = this.#restarts.get(r.host);
    if (until === undefined) {
      if (held && r.restartingUntil === undefined) this.#restartEnded(r.host, 'back', r);
      return;
    }
    if (held?.until === until) return;
    if (held) clearTimeout(held.timer);
    const on = this.deps
      .records()
      .filter((x) => x.host === r.host && x.phase !== 'stopped' && x.phase !== 'failed');
    const decision = this.deps.decisions.record({
      kind: 'host-restart',
      service: '',
      what: `host ${r.host} restarts its agent (planned): held until ${new Date(until).toISOString()}`,
      why: `the agent of host ${r.host} stopped for a planned restart and marked its record restarting for ${until - now} ms; its ${on.length} instance(s) run on: no host loss, no failover, no re-creation while the window lasts (then, if no agent is back, the host is lost)`,
      inputs: {
        host: r.host,
        restartingUntil: until,
        windowMs: until - now,
        instances: on.map((x) => `${x.role} ${x.id}`),
      },
      outcome: { status: 'pending' },
    });
    const timer = setTimeout(() => this.#restartEnded(r.host, 'expired'), Math.max(0, until - now));
    timer.unref();
    this.#restarts.set(r.host, { until, decision, timer });
  }

  /**
   * The end of a planned restart: its agent `back` (the host is up as before), its window `expired`
   * with no agent back (the ordinary host-loss path: now if the heartbeats suspect the host, else when
   * its record lapses), or its record `lapsed` (the caller takes the host as down).
   */
  #restartEnded(host: string, how: 'back' | 'expired' | 'lapsed', record?: HostRecord): void {
    const restart = this.#restarts.get(host);
    if (!restart) return;
    this.#restarts.delete(host);
    clearTimeout(restart.timer);
    const took = this.deps.now() - restart.decision.at;
    if (how === 'back') {
      this.deps.decisions.settle(
        restart.decision,
        'ok',
        `an agent of host ${host} is back after ${took} ms${record ? ` (pid ${record.pid})` : ''}`,
      );
      return;
    }
    this.deps.decisions.settle(
      restart.decision,
      'failed',
      `no agent of host ${host} back within its window (${how === 'lapsed' ? 'its record lapsed' : `until ${new Date(restart.until).toISOString()}`}): the host is lost`,
    );
    if (how === 'expired' && this.#heartbeats.suspected(host)) {
      this.#heldSuspicion.delete(host);
      const s = restart.suspicion;
      this.#lost(host, 'suspected', s ? { ...s, silentMs: s.silentMs + Math.max(0, Date.now() - s.at) } : s);
    }
  }

  #follow(r: HostRecord): void {
    const url = new URL(r.url);
    const port = Number(url.port) || (url.protocol === 'https:' ? 443 : 80);
    this.#heartbeats.set({ host: r.host, address: url.hostname, port });
  }

  /**
   * A host's state for placement. A host restarting its agent (planned) is `suspect`: nothing new is
   * placed on it and a restart of one of its instances waits (its agent cannot start it meanwhile).
   */
  state(host: string): PlacementHostState {
    if (this.#downSince.has(host)) return 'down';
    if (!this.directory.records().some((r) => r.host === host)) return 'down';
    return this.#heartbeats.suspected(host) || this.#restarts.has(host) ? 'suspect' : 'up';
  }

  /** The hosts as placement sees them: capacity from their records, use from the instances on them. */
  placementView(): { hosts: PlacementHost[]; instances: PlacementInstance[] } {
    const instances = this.#instances();
    const hosts = this.directory.records().map((r) => {
      const on = instances.filter((i) => i.host === r.host);
      return {
        name: r.host,
        ...(r.zone ? { zone: r.zone } : {}),
        state: this.state(r.host),
        cores: r.cores,
        memoryBytes: r.memoryBytes,
        usedCores: on.reduce((s, i) => s + i.cores, 0),
        usedMemoryBytes: on.reduce((s, i) => s + i.memoryBytes, 0),
      };
    });
    return { hosts, instances };
  }

  #instances(): PlacementInstance[] {
    return this.deps
      .records()
      .filter((r) => r.phase !== 'stopped' && r.phase !== 'failed')
      .map((r) => ({
        id: r.id,
        service: r.service,
        role: roleOf(r),
        host: r.host,
        ...this.#need(r.service, r.role),
      }));
  }

  /** What an instance of `service` in `role` reserves: its spec's limits (nothing when it has none). */
  #need(service: string, role: InstanceRole): { cores: number; memoryBytes: number } {
    const spec = this.deps.specOf(service);
    const limits = spec ? limitsFor(spec, role, true) : {};
    return { cores: limits.cpu ?? 0, memoryBytes: limits.memoryBytes ?? 0 };
  }

  /**
   * Chooses the host of a new instance (`instance`: the record being placed, when it exists) and records
   * the decision. Undefined (with a failed decision saying why) when no host fits. A shadow follows the
   * live instance whose zone holds the fewest of the service's shadows: each zone with live instances
   * keeps its own shadow pool (seed 002). The echoes of a scaled service (`scaling.max` > 1) are its
   * warm pool, spread across zones.
   */
  place(service: string, role: InstanceRole, instance?: string): PlacementDecision {
    const view = this.placementView();
    const others = view.instances.filter((i) => i.id !== instance);
    const primary =
      role === 'shadow'
        ? this.#liveForShadow(view, others, service)
        : others.find((i) => i.service === service && i.role === 'primary');
    // A scaled service's echoes are its warm pool (no one primary's standby): spread across zones.
    const warmPool = role === 'echo' && (this.deps.specOf(service)?.scaling.max ?? 1) > 1;
    const request: PlacementRequest =
      role === 'echo' && primary && !warmPool
        ? { kind: 'echo', primary: primary.id }
        : role === 'shadow' && primary
          ? { kind: 'shadow', live: primary.id }
          : role === 'echo'
            ? { kind: 'warm-pool', service }
            : { kind: 'primary', service };
    // A file sync runs on one agent and writes echoes' directories on its own host: a file-synced
    // service's instances stay on that host (hot services replicate through the router, across hosts).
    const syncHost = this.deps.fileSyncHost(service);
    const pinned = syncHost ?? (role === 'primary' ? this.options.placeOn : undefined);
    const hosts = pinned ? view.hosts.filter((h) => h.name === pinned) : view.hosts;
    const decision = place({
      hosts,
      instances: others,
      request,
      need: this.#need(service, role),
      at: this.deps.now(),
    });
    if (pinned && decision.applied)
      decision.reason = `${syncHost ? `its file sync runs on ${syncHost}` : `--place-on ${pinned}`}; ${decision.reason}`;
    this.#recordPlacement(service, role, instance, decision);
    return decision;
  }

  /**
   * Seeds 003/004: the host a primary migrates to — another host than its own, one not holding its echo
   * when another has room — as a recorded decision when `record` (else a preview, nothing recorded).
   */
  placeMigration(rec: InstanceRecord, record = true): PlacementDecision {
    const view = this.placementView();
    const decision = place({
      ...view,
      request: { kind: 'migration', instance: rec.id },
      need: this.#need(rec.service, 'primary'),
      at: this.deps.now(),
    });
    if (record) this.#recordPlacement(rec.service, 'primary', rec.id, decision, 'the migration target of');
    return decision;
  }

  #recordPlacement(
    service: string,
    role: InstanceRole,
    instance: string | undefined,
    decision: PlacementDecision,
    as?: string,
  ): void {
    const subject = `${as ? `${as} ` : ''}${role} ${instance ?? `of ${service}`}`;
    this.deps.decisions.record({
      kind: 'place',
      service,
      ...(instance ? { instance } : {}),
      what: decision.applied
        ? `place ${subject} on ${decision.host}${decision.zone ? ` (zone ${decision.zone})` : ''}`
        : `place ${subject}: no host`,
      why: decision.reason,
      inputs: { ...decision.inputs, request: decision.request },
      outcome: { status: decision.applied ? 'ok' : 'failed' },
    });
  }

  /** The live instance a new shadow of `service` follows: the one whose zone has the fewest shadows. */
  #liveForShadow(
    view: { hosts: PlacementHost[] },
    others: PlacementInstance[],
    service: string,
  ): PlacementInstance | undefined {
    const zoneOf = (host: string): string => view.hosts.find((h) => h.name === host)?.zone ?? '';
    const shadowsIn = (zone: string): number =>
      others.filter((i) => i.service === service && i.role === 'shadow' && zoneOf(i.host) === zone).length;
    return others
      .filter((i) => i.service === service && i.role === 'primary')
      .map((i) => ({ i, n: shadowsIn(zoneOf(i.host)) }))
      .sort((a, b) => a.n - b.n || (a.i.id < b.i.id ? -1 : a.i.id > b.i.id ? 1 : 0))[0]?.i;
  }

  /**
   * Whether an instance may be (re)started now: `go` on its host; `wait` while its host is away (down
   * for less than `replaceAfterMs`, or suspected); `replace` once it has been down longer: it is
   * re-created on another host.
   */
  restartGate(rec: InstanceRecord): 'go' | 'wait' | 'replace' {
    const state = this.state(rec.host);
    if (state === 'up') {
      this.#shadowsToMove.delete(rec.id);
      return 'go';
    }
    // A shadow of a lost host moves at once (seed 001: recreated when its heartbeat is lost).
    if (this.#shadowsToMove.has(rec.id)) return 'replace';
    const since = this.#downSince.get(rec.host);
    if (state === 'down' && (since === undefined || this.deps.now() - since >= this.#replaceAfter))
      return 'replace';
    return 'wait';
  }

  /**
   * Instances still recorded as live on hosts down for longer than `replaceAfterMs` (and no promotion of
   * their service under way is told by the caller): to be marked exited and re-created elsewhere.
   */
  overdue(): InstanceRecord[] {
    const now = this.deps.now();
    const gone = [...this.#downSince]
      .filter(([, since]) => now - since >= this.#replaceAfter)
      .map(([h]) => h);
    if (gone.length === 0) return [];
    return this.deps
      .records()
      .filter((r) => gone.includes(r.host) && ['starting', 'running', 'unhealthy'].includes(r.phase));
  }

  #lost(host: string, how: 'suspected' | 'lease', suspicion?: HostSuspicion): void {
    const records = this.deps.records();
    const on = records.filter((r) => r.host === host && r.phase !== 'stopped' && r.phase !== 'failed');
    const view = this.placementView();
    const plan = planHostLoss({ ...view, lost: host, at: this.deps.now() });
    const evidence = suspicion
      ? { phi: Number(suspicion.phi.toFixed(1)), silentMs: suspicion.silentMs }
      : { lease: 'lapsed' };
    const why =
      how === 'suspected'
        ? `no heartbeat from host ${host} for ${suspicion?.silentMs ?? '?'} ms (phi ${suspicion?.phi.toFixed(1) ?? '?'})`
        : `the lease of host ${host} lapsed (its agent has not renewed it)`;
    this.deps.decisions.record({
      kind: 'host-lost',
      service: '',
      what: `host ${host} ${how === 'suspected' ? 'is suspected' : 'is down'}: ${on.length} instance(s) on it`,
      why,
      inputs: { host, how, ...evidence, instances: on.map((r) => `${r.role} ${r.id}`), plan: plan.steps },
      outcome: { status: 'recorded' },
    });
    const lostPrimaries = this.#lostPrimaries(plan.steps, records);
    if (lostPrimaries.length > 0) {
      if (how === 'suspected' && this.#holdForFence(host, suspicion, why)) {
        // The wait overlaps what the failover can prepare without the echo serving.
        for (const p of lostPrimaries) if (p.echo) this.deps.loss.prepare?.(p.rec, p.echo);
      } else this.#failOver(lostPrimaries, why, { host, how, ...evidence });
    }
    for (const step of plan.steps) {
      if (step.action !== 'recreate' || step.role !== 'shadow') continue;
      const rec = records.find((r) => r.id === step.instance);
      if (!rec || !['starting', 'running', 'unhealthy'].includes(rec.phase)) continue;
      this.#shadowsToMove.add(rec.id);
      const zone = step.placement.zone;
      this.deps.decisions.record({
        kind: 'recreate',
        service: rec.service,
        instance: rec.id,
        what: step.placement.applied
          ? `recreate shadow ${rec.id} in zone ${zone || '-'} (its host ${host} is lost)`
          : `recreate shadow ${rec.id}: no host in its zone has room`,
        why: `${why}; a shadow is re-created at once (seed 001), in its live instance's zone (seed 002): ${step.placement.reason}`,
        inputs: { host, how, ...evidence, planned: step.placement.host, zone },
        outcome: { status: step.placement.applied ? 'recorded' : 'failed' },
      });
      this.deps.loss.shadowLost(rec);
    }
  }

  /** The primaries of a host-loss plan to fail over (live primaries with an echo to promote). */
  #lostPrimaries(
    steps: ReturnType<typeof planHostLoss>['steps'],
    records: InstanceRecord[],
  ): { rec: InstanceRecord; echo: string | undefined }[] {
    const out: { rec: InstanceRecord; echo: string | undefined }[] = [];
    for (const step of steps) {
      if (step.action !== 'promote-echo') continue;
      const rec = records.find((r) => r.id === step.instance);
      if (rec && rec.role === 'primary' && ['starting', 'running', 'unhealthy'].includes(rec.phase))
        out.push({ rec, echo: step.echo });
    }
    return out;
  }

  #failOver(
    primaries: { rec: InstanceRecord; echo: string | undefined }[],
    why: string,
    evidence: Record<string, unknown>,
  ): void {
    for (const p of primaries) this.deps.loss.primaryLost(p.rec, why, evidence, p.echo);
  }

  /**
   * A host only suspected (silent, its lease not lapsed): its agent, if it is cut off, fences its
   * primaries `fenceAfterMs` (its record says) after its last lease renewal — which was no later than
   * the cut, and the cut came before the first unanswered heartbeat could be answered (when none was
   * sent since the last answer: the last answer + one heartbeat interval). Until that
   * deadline (+ {@link ClusterHostsOptions.fenceMarginMs}) has passed the old primary may still
   * acknowledge writes: an echo elsewhere taking over now would be a second primary. So the failover
   * waits (one pending decision saying why and how long), measured in durations on control's clock, not
   * in wall clocks compared across hosts; a lapse of the lease ends the wait at once. An agent with
   * self-fencing off (`fenceAfterMs` 0) is waited for until its lease lapses; one that publishes no
   * bound (an older agent) is not waited for. Returns whether the failover waits.
   */
  #holdForFence(host: string, suspicion: HostSuspicion | undefined, why: string): boolean {
    const fenceAfter = this.directory.records().find((r) => r.host === host)?.fenceAfterMs;
    if (fenceAfter === undefined || this.#fenceWaits.has(host)) return this.#fenceWaits.has(host);
    const interval = this.options.heartbeat?.intervalMs ?? 100;
    const margin = this.options.fenceMarginMs ?? 150;
    const silentMs = suspicion?.silentMs ?? 0;
    // The cut came before the first unanswered heartbeat could be answered: that many ms ago. Without
    // it (no heartbeat sent since the last answer), the last answer + one interval bounds it.
    const unanswered = suspicion?.unansweredMs;
    const cutAgo = unanswered ?? silentMs - interval;
    const waitMs = Math.ceil(fenceAfter + margin - cutAgo);
    if (fenceAfter > 0 && waitMs <= 0) return false;
    const arithmetic =
      unanswered !== undefined
        ? `${fenceAfter} + ${margin} (margin) − ${unanswered} (since the first unanswered heartbeat was sent)`
        : `${fenceAfter} + ${interval} + ${margin} (margin) − ${silentMs} (already silent)`;
    const on = this.deps
      .records()
      .filter((r) => r.host === host && r.role === 'primary' && r.phase !== 'stopped' && r.phase !== 'failed')
      .map((r) => r.id);
    const evidence = {
      host,
      how: 'suspected',
      ...(suspicion ? { phi: Number(suspicion.phi.toFixed(1)), silentMs } : {}),
      ...(unanswered !== undefined ? { unansweredMs: unanswered } : {}),
    };
    const decision = this.deps.decisions.record({
      kind: 'host-lost',
      service: '',
      what:
        fenceAfter > 0
          ? `failover of ${on.join(', ')} waits for ${host}'s self-fence deadline, ${waitMs} ms`
          : `failover of ${on.join(', ')} waits for ${host}'s lease to lapse (its agent does not self-fence)`,
      why:
        fenceAfter > 0
          ? `${why}; host ${host} is only suspected, its lease not lapsed: cut off, its agent fences its primaries ${fenceAfter} ms after its last lease renewal (no later than the cut, which came before its first unanswered heartbeat could be answered); an echo elsewhere serving before that would be a second primary acknowledging writes. Waiting ${arithmetic} = ${waitMs} ms, or until its lease lapses`
          : `${why}; the agent of host ${host} runs with self-fencing off (--fence-after 0): its primaries may run on until its lease lapses, and an echo elsewhere serving before that would be a second primary`,
      inputs: {
        ...evidence,
        fenceAfterMs: fenceAfter,
        heartbeatIntervalMs: interval,
        marginMs: margin,
        waitMs,
        primaries: on,
      },
      outcome: { status: 'pending' },
    });
    const wait: FenceWait = { decision, why, evidence };
    if (fenceAfter > 0) {
      wait.timer = setTimeout(() => this.#fenceWaitEnded(host, 'deadline'), waitMs);
      wait.timer.unref();
    }
    this.#fenceWaits.set(host, wait);
    return true;
  }

  /**
   * The end of a failover's wait for a suspected host's self-fence: its `deadline` passed (the failover
   * goes on now, if the host is still away), its lease `lapsed` (the caller fails over at once), or the
   * host is `back` (answers heartbeats again: nothing to fail over).
   */
  #fenceWaitEnded(host: string, how: 'deadline' | 'lapsed' | 'back'): void {
    const wait = this.#fenceWaits.get(host);
    if (!wait) return;
    this.#fenceWaits.delete(host);
    clearTimeout(wait.timer);
    const took = this.deps.now() - wait.decision.at;
    const settle = (status: 'ok' | 'skipped', detail: string): void =>
      this.deps.decisions.settle(wait.decision, status, detail);
    if (how === 'back')
      return settle('skipped', `host ${host} answers heartbeats again after ${took} ms: no failover`);
    if (how === 'lapsed')
      return settle('ok', `the lease of host ${host} lapsed after ${took} ms: failing over`);
    if (this.state(host) === 'up') return settle('skipped', `host ${host} is up again: no failover`);
    settle(
      'ok',
      `${host}'s self-fence deadline passed (${took} ms): its agent, if cut off, has fenced its primaries; failing over`,
    );
    const view = this.placementView();
    const plan = planHostLoss({ ...view, lost: host, at: this.deps.now() });
    this.#failOver(this.#lostPrimaries(plan.steps, this.deps.records()), wait.why, {
      ...wait.evidence,
      fenceWaitMs: took,
    });
  }

  #recovered(host: string, how: string): void {
    this.deps.decisions.record({
      kind: 'host-lost',
      service: '',
      what: `host ${host} is back`,
      why: `host ${host} ${how}`,
      inputs: { host },
      outcome: { status: 'recorded' },
    });
  }
}
