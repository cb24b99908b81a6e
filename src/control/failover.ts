import type { ServiceSpec } from '../config/index.js';
import { ErrorCode, UnderstudyError } from '../errors/index.js';
import type { StateStore } from '../store/index.js';
import type { PromotionObserver } from '../telemetry/index.js';
import { limitsFor, stateDirUsers, type LaunchContext } from './instance-launch.js';
import { ExternalEchoes } from './external-echo.js';
import { provisionExternalEcho } from './external-provision.js';
import { crashPoint } from './crash-points.js';
import { resumeEchoByReplay } from './echo-resume.js';
import { moveInstance } from './instance-transition.js';
import type { KeyedWorkQueue } from './keyed-work-queue.js';
import type { ControlDecision, InstanceRecord, PromotionIntent } from './records.js';
import type { ServingSetHost } from './serving-set.js';

/** Label of a promotion in the per-service work queue. */
export const PROMOTION_WORK = 'promotion';

/** Store key prefix of promotion intents (`promotions/<service>`). */
export const PROMOTION_PREFIX = 'promotions/';

/** Timings of the last failover or switchover of a service, shown by `understudy status`. */
export interface FailoverRecord {
  kind: 'failover' | 'switchover';
  at: number;
  from: string;
  to: string;
  epoch: number;
  cause: string;
  /** Failure to detection, ms (when the failure time is known, e.g. a process exit). */
  detectionMs?: number;
  /** Detection (or request) to the new primary serving, ms. */
  promotionMs: number;
  /** Acknowledged mutations the promoted echo had not applied (hot mode); empty means nothing lost. */
  atRisk: number[];
  /** When redundancy was restored (a replacement echo in sync); undefined while degraded. */
  restoredAt?: number;
}

/** The instances a failover works on (the instance supervisor is one). */
export interface FailoverHost extends ServingSetHost {
  /** The store: the service's epoch (compare-and-set) and the promotion intent. */
  readonly store: StateStore;
  /** Marks an instance as stopped on purpose: its exit is not a failure. */
  expectExit(id: string): void;
  /** Starts (or restarts) an instance process for a record; settles the decision. */
  launch(rec: InstanceRecord, decision: ControlDecision): Promise<void>;
  /** Resolves once the instance answers (health check or port), or false on timeout. */
  waitReady(rec: InstanceRecord, timeoutMs: number): Promise<boolean>;
  /** Every known instance of every service (to check that a state directory is no one else's). */
  allInstances(): InstanceRecord[];
  /** Where instances run: the cwd of an external echo's hooks. */
  readonly launchContext: LaunchContext;
}

/** What a {@link Failover} reports to and queues on, besides its instances. */
export interface FailoverDeps {
  /** Where promotions and their durations are reported (the control plane's telemetry). */
  readonly telemetry: PromotionObserver;
  /** The per-service work queue: a promotion holds its service (label {@link PROMOTION_WORK}). */
  readonly work: KeyedWorkQueue;
}

/** The cause of a failover: what was seen, and when the failure happened if known. */
export interface FailoverCause {
  /** `host`: its host is lost (no heartbeat, or its lease lapsed). */
  kind: 'crash' | 'hang' | 'unhealthy' | 'forced' | 'host';
  detail: string;
  evidence: Record<string, unknown>;
  detectedAt: number;
  failedAt?: number;
}

/**
 * Promotion with fencing (seed 000's failover, seed 003's "migration is a routing switch"):
 * bump the service's epoch by compare-and-set, fence the old primary (kill its process group and
 * raise the router's epoch) before the new primary serves, switch traffic, then bring the old slot
 * back as an echo of the new primary (snapshot + mutation-log replay) to restore redundancy.
 */
export class Failover {
  readonly #last = new Map<string, FailoverRecord>();

  readonly #telemetry: PromotionObserver;
  readonly #work: KeyedWorkQueue;
  /** The hooks and lag readings of external echoes (`echo.mode: external`). */
  readonly external: ExternalEchoes;

  constructor(
    private readonly host: FailoverHost,
    deps: FailoverDeps,
  ) {
    this.#telemetry = deps.telemetry;
    this.#work = deps.work;
    this.external = new ExternalEchoes(host);
  }

  /** The last failover or switchover of a service. */
  last(service: string): FailoverRecord | undefined {
    return this.#last.get(service);
  }

  /** Whether a promotion of the service is under way (running or queued on the service's work queue). */
  busy(service: string): boolean {
    return this.#work.has(service, PROMOTION_WORK);
  }

  /** Echoes that could take over, best first (for hot write-through: those that lose nothing). */
  candidates(service: string): InstanceRecord[] {
    const plane = this.host.services.plane(service);
    const echoes = this.host
      .instancesOf(service)
      .filter((i) => i.role === 'echo' && (i.phase === 'running' || i.phase === 'starting'));
    const spec = this.host.specOf(service);
    const files = this.host.services.files(service);
    if (spec.echo.mode === 'cold')
      return this.host.instancesOf(service).filter((i) => i.role === 'echo' && i.phase === 'standby');
    if (spec.echo.mode === 'external') {
      // The smallest known replication lag first; unknown (never read, follow failed) last.
      const lag = (i: InstanceRecord): number =>
        i.phase === 'running' ? (this.external.lagBytes(i.id) ?? Number.MAX_SAFE_INTEGER) : Infinity;
      return echoes.sort((a, b) => lag(a) - lag(b));
    }
    const risk = (i: InstanceRecord): number =>
      plane?.replication?.atRisk(i.id).length ?? (files && !files.caughtUp(i.id) ? 1 : 0);
    return echoes.sort((a, b) => risk(a) - risk(b) || (a.phase === 'running' ? -1 : 1));
  }

  /**
   * Unplanned failover: the primary failed (or an operator forces it, optionally `to` one echo).
   * Returns the decision, settled with the outcome.
   * Thrown: UNDERSTUDY_ERR_FAILOVER when no echo can take over or the epoch moved under us.
   */
  async failover(service: string, cause: FailoverCause, to?: string): Promise<ControlDecision> {
    const tried = new Set<string>();
    for (;;) {
      const old = this.host.instancesOf(service).find((i) => i.role === 'primary' && i.phase !== 'stopped');
      // A chosen target (`failover --to`) is the only candidate: no other echo is tried in its place.
      const candidates = this.candidates(service).filter((c) => !tried.has(c.id) && (!to || c.id === to));
      const [target] = candidates;
      const decision = this.host.decisions.record({
        kind: 'failover',
        service,
        ...(old ? { instance: old.id } : {}),
        what: `promote ${target?.id ?? '(no echo)'} in place of ${old?.id ?? '(no primary)'}`,
        why: `${cause.kind}: ${cause.detail}${tried.size > 0 ? ` (after ${[...tried].join(', ')} could not take over)` : ''}`,
        inputs: { cause: cause.kind, evidence: cause.evidence, candidates: candidates.map((c) => c.id) },
        outcome: { status: 'pending' },
      });
      if (!target) {
        this.host.decisions.settle(decision, 'failed', 'no echo can take over');
        throw new UnderstudyError(ErrorCode.Failover, `service '${service}' has no echo that can take over`);
      }
      const slot = target.slot;
      try {
        await this.#promote(service, old, target, decision, 'failover', cause);
        return decision;
      } catch (err) {
        // A promotion that failed half-way (a cold echo that never became ready, a failing promotion
        // hook): that echo steps back and is stopped (the reconciler provisions a fresh one), and the next
        // candidate is tried, so that the service is not left without a primary.
        if (target.role !== 'primary' || (err as UnderstudyError).code !== ErrorCode.Failover) throw err;
        tried.add(target.id);
        moveInstance(this.host.decisions, target, 'step-down');
        target.slot = slot;
        this.host.expectExit(target.id);
        await this.host.agents
          .of(target)
          .stop(target.id, { graceMs: this.host.timeouts.failedPromotionGraceMs })
          .catch(() => undefined);
        await this.host.save(target);
      }
    }
  }

  /**
   * Planned switchover: pause new mutations, wait until the target echo has applied everything, switch,
   * resume. The old primary stays running and becomes an echo. Zero failed requests.
   */
  async switchover(service: string, to?: string): Promise<ControlDecision> {
    const spec = this.host.specOf(service);
    const old = this.host.instancesOf(service).find((i) => i.role === 'primary' && i.phase === 'running');
    const target = to ? this.host.instancesOf(service).find((i) => i.id === to) : this.candidates(service)[0];
    if (!old)
      throw new UnderstudyError(
        ErrorCode.Failover,
        `service '${service}' has no running primary to switch from`,
      );
    if (!target || target.role !== 'echo' || target.service !== service) {
      throw new UnderstudyError(
        ErrorCode.Failover,
        to ? `'${to}' is not an echo of '${service}'` : `service '${service}' has no echo to switch to`,
      );
    }
    const decision = this.host.decisions.record({
      kind: 'switchover',
      service,
      instance: old.id,
      what: `switch ${service} from ${old.id} to ${target.id}`,
      why: to ? `requested switchover to ${to}` : 'requested switchover',
      inputs: { from: old.id, to: target.id, mode: spec.echo.mode },
      outcome: { status: 'pending' },
    });
    await this.#promote(service, old, target, decision, 'switchover', {
      kind: 'forced',
      detail: 'planned switchover',
      evidence: {},
      detectedAt: this.host.clock.now(),
    });
    return decision;
  }

  async #promote(
    service: string,
    old: InstanceRecord | undefined,
    target: InstanceRecord,
    decision: ControlDecision,
    kind: 'failover' | 'switchover',
    cause: FailoverCause,
  ): Promise<void> {
    if (this.busy(service)) {
      this.host.decisions.settle(decision, 'failed', 'a promotion is already under way');
      throw new UnderstudyError(ErrorCode.Failover, `a promotion of '${service}' is already under way`);
    }
    // One operation on a service at a time: a serving-set change under way finishes first.
    await this.#work.run(service, PROMOTION_WORK, () =>
      this.#promoteNow(service, old, target, decision, kind, cause),
    );
  }

  async #promoteNow(
    service: string,
    old: InstanceRecord | undefined,
    target: InstanceRecord,
    decision: ControlDecision,
    kind: 'failover' | 'switchover',
    cause: FailoverCause,
  ): Promise<void> {
    const spec = this.host.specOf(service);
    const plane = this.host.services.plane(service);
    const timeouts = this.host.timeouts;
    const started = cause.detectedAt;
    const observed = { service, kind, cause: cause.kind };
    let paused = false;
    let intentWritten = false;
    try {
      if (kind === 'switchover' && plane) {
        // Routers in other processes hold mutations too: they follow the routing record's pause.
        paused = true;
        await plane.pauseForSwitchover(
          await this.host.store.epoch(service),
          `switchover of ${service} to ${target.id}`,
          this.host.clock,
        );
        const catchUpMs = spec.echo.mutations.timeout * timeouts.switchoverMutationsFactor;
        if (plane.replication && !(await plane.replication.waitCaughtUp(target.id, catchUpMs))) {
          throw new UnderstudyError(
            ErrorCode.Failover,
            `echo ${target.id} did not catch up within ${catchUpMs} ms`,
          );
        }
      }
      const files = this.host.services.files(service);
      if (
        kind === 'switchover' &&
        files &&
        !(await files.waitCaughtUp(target.id, timeouts.switchoverFilesMs))
      ) {
        throw new UnderstudyError(
          ErrorCode.Failover,
          `the files of echo ${target.id} did not catch up within ${timeouts.switchoverFilesMs / 1000} s`,
        );
      }
      const epoch = await this.host.store.epoch(service);
      // The intent goes into the store before the epoch moves: a control process killed from here until
      // every role is saved leaves it behind, and the next one rolls the promotion forward or back.
      const intent: PromotionIntent = {
        service,
        kind,
        ...(old ? { from: old.id } : {}),
        to: target.id,
        toSlot: target.slot,
        epoch,
        next: epoch + 1,
        at: this.host.clock.now(),
        decision: decision.seq,
      };
      await this.host.store.put(PROMOTION_PREFIX + service, JSON.stringify(intent));
      intentWritten = true;
      crashPoint('before-epoch-cas');
      const next = await this.host.store.bumpEpoch(service, epoch);
      if (next === undefined)
        throw new UnderstudyError(
          ErrorCode.Failover,
          `the epoch of '${service}' moved under this promotion (another control plane?)`,
        );
      crashPoint('after-epoch-cas');
      // Fence first: the deposed primary must not serve once the new one does. Raising the router's epoch
      // cuts its connections; new requests wait (briefly) for the new primary.
      let fenceHook: string | undefined;
      if (old && kind === 'failover') {
        this.host.expectExit(old.id);
        if (cause.kind === 'host') {
          // Its host is unreachable: fencing through its agent would only wait for a timeout. Its agent
          // fences it by itself (self-fencing, before its lease can lapse) and, under write-through,
          // its echo refuses its old epoch meanwhile. Tried anyway, not awaited, for a host that answers.
          void Promise.resolve()
            .then(() => this.host.agents.of(old).fence(old.id))
            .catch(() => undefined);
        } else await this.host.agents.of(old).fence(old.id);
        if (spec.echo.mode === 'external') fenceHook = await this.external.fence(spec, old, target, next);
      }
      plane?.router.setEpoch(next);
      // The router's mutation log is a third copy: let the echo apply what it still lacks from it.
      if (plane?.replication) await plane.replication.waitCaughtUp(target.id, spec.echo.mutations.timeout);
      const atRisk = plane?.replication?.atRisk(target.id) ?? [];
      await plane?.removeEcho(target.id);
      // Nothing more is written into the target's state directory: it is about to serve from it.
      const fileLag = files?.echoes().find((e) => e.echo === target.id);
      const externalLag = spec.echo.mode === 'external' ? this.external.lagBytes(target.id) : undefined;
      await files?.removeEcho(target.id);
      const echoSlot = target.slot;
      if (!moveInstance(this.host.decisions, target, 'promote'))
        throw new UnderstudyError(
          ErrorCode.Failover,
          `${target.id} cannot be promoted from phase '${target.phase}'`,
        );
      target.slot = 0;
      target.epoch = next;
      if (spec.echo.mode === 'cold' && target.phase === 'standby') {
        const start = this.host.decisions.record({
          kind: 'start',
          service,
          instance: target.id,
          what: `start cold echo ${target.id} to promote it`,
          why: decision.why,
          inputs: {},
          outcome: { status: 'pending' },
        });
        await this.host.launch(target, start);
      } else if (spec.echo.mode === 'warm' && spec.echo.promote) {
        await this.promotionHook(target, spec);
      } else if (spec.echo.mode === 'external') {
        await this.external.promote(spec, target, old, next);
      }
      if (spec.echo.mode === 'cold' && !(await this.host.waitReady(target, timeouts.coldPromotionReadyMs))) {
        throw new UnderstudyError(
          ErrorCode.Failover,
          `cold echo ${target.id} did not become ready within ${timeouts.coldPromotionReadyMs / 1000} s`,
        );
      }
      // A promoted echo serves with the full serving limits at once (it may have been sized down).
      const agent = this.host.agents.of(target);
      const full = limitsFor(spec, 'primary', (await agent.limitsSupport()).supported);
      if (Object.keys(full).length > 0 && (await agent.instance(target.id))) {
        await agent
          .setResources(target.id, full)
          .then(() => (target.limits = full))
          .catch(() => undefined);
      }
      plane?.setPrimary(target, next);
      const promotedAt = this.host.clock.now();
      await files?.setPrimary(target.stateDir);
      await this.host.save(target);
      if (old) {
        moveInstance(this.host.decisions, old, kind === 'failover' ? 'fence' : 'demote');
        old.slot = echoSlot;
        await this.host.save(old);
        if (kind === 'switchover') {
          plane?.addEcho(old, plane.replication?.log.lastSeq ?? 0);
          if (spec.echo.mode === 'cold') {
            this.host.expectExit(old.id);
            await this.host.agents.of(old).stop(old.id, { graceMs: spec.stopGrace });
            moveInstance(this.host.decisions, old, 'standby');
            delete old.pid;
            delete old.health;
          }
          await files?.addEcho(old.id, old.stateDir);
          await this.host.save(old);
          if (spec.echo.mode === 'external') await this.external.follow(spec, old, target, true);
        }
      }
      // Every role is saved: nothing is left to roll forward.
      await this.host.store.delete(PROMOTION_PREFIX + service);
      intentWritten = false;
      const record: FailoverRecord = {
        kind,
        at: promotedAt,
        from: old?.id ?? '',
        to: target.id,
        epoch: next,
        cause: `${cause.kind}: ${cause.detail}`,
        ...(cause.failedAt !== undefined
          ? { detectionMs: Math.max(0, cause.detectedAt - cause.failedAt) }
          : {}),
        promotionMs: promotedAt - started,
        atRisk,
        ...(kind === 'switchover' ? { restoredAt: promotedAt } : {}),
      };
      this.#last.set(service, record);
      this.#telemetry.promotion({
        ...observed,
        outcome: 'ok',
        promotionSeconds: record.promotionMs / 1000,
        ...(record.detectionMs !== undefined ? { detectionSeconds: record.detectionMs / 1000 } : {}),
      });
      decision.inputs = {
        ...decision.inputs,
        from: old?.id,
        to: target.id,
        epoch: next,
        atRisk,
        ...(fileLag ? { fileSyncLag: { seconds: fileLag.lagSeconds, bytes: fileLag.lagBytes } } : {}),
        ...(fenceHook !== undefined ? { fenceHook } : {}),
        ...(externalLag !== undefined ? { externalLagBytes: externalLag } : {}),
        timings: { detectionMs: record.detectionMs, promotionMs: record.promotionMs },
      };
      this.host.decisions.settle(
        decision,
        'ok',
        `${target.id} serves at epoch ${next} after ${record.promotionMs} ms; ${
          fileLag
            ? `file sync lag at promotion ${fileLag.lagSeconds.toFixed(3)} s / ${fileLag.lagBytes} bytes`
            : externalLag !== undefined
              ? `replication lag at promotion ${externalLag} bytes (the service's own replication)`
              : atRisk.length
                ? `${atRisk.length} acknowledged mutation(s) at risk: ${atRisk.slice(0, 10).join(', ')}`
                : 'nothing acknowledged lost'
        }`,
      );
    } catch (err) {
      // This process handles the failure itself (the caller steps the echo back or tries the next one).
      if (intentWritten) await this.host.store.delete(PROMOTION_PREFIX + service).catch(() => undefined);
      this.host.decisions.settle(decision, 'failed', `${(err as Error).message}`);
      this.#telemetry.promotion({ ...observed, outcome: 'failed' });
      throw err;
    } finally {
      if (paused) await plane?.resumeAfterSwitchover().catch(() => plane.router.resume());
    }
  }

  /**
   * Tells a promoted warm echo that it is the primary now (the spec's `echo.promote` hook).
   * Thrown: UNDERSTUDY_ERR_FAILOVER when the HTTP hook does not answer or answers an error.
   */
  async promotionHook(target: InstanceRecord, spec: ServiceSpec): Promise<void> {
    const hook = spec.echo.promote;
    if (!hook?.signal && !hook?.http) return;
    const agent = this.host.agents.of(target);
    if (hook.signal)
      await agent.runHook(target.id, { signal: hook.signal }, this.host.timeouts.promotionHookMs);
    if (hook.http) {
      const path = hook.http;
      const port = this.host.services.plane(spec.name)?.portOf(target) ?? Object.values(target.ports)[0] ?? 0;
      const status = await agent
        .runHook(target.id, { http: { port, path } }, this.host.timeouts.promotionHookMs)
        .catch((err: unknown) => {
          throw new UnderstudyError(
            ErrorCode.Failover,
            `promotion hook ${path} of ${target.id} did not answer: ${(err as Error).message}`,
            { cause: err },
          );
        });
      if (status === undefined || status < 200 || status > 299)
        throw new UnderstudyError(
          ErrorCode.Failover,
          `promotion hook ${path} of ${target.id} answered HTTP ${status}`,
        );
    }
  }

  /**
   * Brings a slot back as an echo of the current primary: with new mutations paused, copy the primary's
   * state directory (a consistent snapshot: every acknowledged write is on disk), note the log position,
   * resume, start the echo, and replay the log from that position. Used for a replacement echo after a
   * failover, a rejoining old primary, and a restarted echo.
   */
  async provisionEcho(rec: InstanceRecord, decision: ControlDecision): Promise<void> {
    const spec = this.host.specOf(rec.service);
    // Its directory is replaced by a copy of the primary's: never one that another instance uses.
    if (await this.refuseSharedStateDir(rec, decision)) return;
    if (!moveInstance(this.host.decisions, rec, 'provision')) {
      this.host.decisions.settle(
        decision,
        'failed',
        `${rec.role} ${rec.id} in phase '${rec.phase}' cannot be provisioned as an echo`,
      );
      return;
    }
    if (spec.echo.mode === 'external') {
      await this.#provisionExternal(spec, rec, decision);
      return;
    }
    const files = this.host.services.files(rec.service);
    if (files) {
      // Warm and cold: the file sync makes the initial full copy, then keeps it continuous. The agent
      // creates the directory and its sync journal owner-only first.
      await this.host.agents.of(rec).prepareSyncTarget(rec.stateDir);
      await files.addEcho(rec.id, rec.stateDir);
      if (spec.echo.mode === 'cold') {
        moveInstance(this.host.decisions, rec, 'standby');
        delete rec.pid;
        delete rec.health;
        await this.host.save(rec);
        this.host.decisions.settle(
          decision,
          'ok',
          'cold echo kept in sync, not running; it starts on promotion',
        );
      } else {
        await this.host.launch(rec, decision);
      }
      this.#restoreWhen(rec, () => files.waitCaughtUp(rec.id, this.host.timeouts.fileRestoreMs));
      return;
    }
    const primary = this.host.instancesOf(rec.service).find((i) => i.role === 'primary' && i.id !== rec.id);
    const plane = this.host.services.plane(rec.service);
    if (primary && plane) {
      const resumed = await resumeEchoByReplay(this.host, rec, decision);
      if (resumed === true) {
        const replication = plane.replication;
        if (replication)
          this.#restoreWhen(rec, () => replication.waitCaughtUp(rec.id, this.host.timeouts.replayRestoreMs));
        return;
      }
      if (resumed) decision = resumed;
    }
    let fromSeq = 0;
    const log = plane?.replication?.log;
    if (primary && plane && primary.host !== rec.host && log && log.firstKeptSeq <= 1) {
      // A state directory is its host's own: an echo on another host than its primary starts empty and
      // replays the whole mutation log, which still holds every mutation since the service began.
      await this.host.agents.of(rec).removeState(rec.stateDir);
    } else if (primary && plane) {
      await plane.router.pause();
      try {
        fromSeq = plane.replication?.log.lastSeq ?? 0;
        await this.host.agents.of(rec).snapshotState(primary, rec.stateDir);
      } finally {
        plane.router.resume();
      }
    }
    await this.host.launch(rec, decision);
    if (!plane || rec.phase === 'failed') return;
    // Replay once it listens, so write-through does not wait on a process that is still starting.
    await this.host.waitReady(rec, this.host.timeouts.echoReadyMs);
    plane.addEcho(rec, fromSeq);
    const replication = plane.replication;
    if (replication)
      this.#restoreWhen(rec, () => replication.waitCaughtUp(rec.id, this.host.timeouts.replayRestoreMs));
  }

  /** An external echo: see {@link provisionExternalEcho}; redundancy is back once a lag reading says 0. */
  async #provisionExternal(spec: ServiceSpec, rec: InstanceRecord, decision: ControlDecision): Promise<void> {
    const rejoin = this.#last.get(rec.service)?.from === rec.id;
    if (await provisionExternalEcho(this.host, this.external, { spec, rec, decision, rejoin }))
      this.#restoreWhen(rec, () => this.external.waitInSync(rec.id, spec, this.host.timeouts.fileRestoreMs));
  }

  /**
   * Before a state directory is deleted: if another instance uses it (the same or a nested directory),
   * nothing is deleted, the instance is marked failed and the decision says why. Returns whether it
   * refused.
   */
  async refuseSharedStateDir(rec: InstanceRecord, decision: ControlDecision): Promise<boolean> {
    const users = stateDirUsers(rec, this.host.allInstances());
    if (users.length === 0) return false;
    moveInstance(this.host.decisions, rec, 'fail');
    await this.host.save(rec);
    decision.inputs = { ...decision.inputs, stateDir: rec.stateDir, sharedWith: users.map((u) => u.id) };
    this.host.decisions.settle(
      decision,
      'failed',
      `refusing to delete the state directory ${rec.stateDir} of ${rec.id}: ${users
        .map((u) => `${u.id} (${u.stateDir})`)
        .join(
          ', ',
        )} use${users.length === 1 ? 's' : ''} it; give every instance its own stateDir, e.g. 'state/{instance}'`,
    );
    return true;
  }

  /**
   * Seed 002: recreates an echo whose state sync keeps failing — its state directory and sync journal
   * are removed and it is provisioned again from a full copy. The caller has stopped its process.
   */
  async recreateEcho(rec: InstanceRecord, decision: ControlDecision): Promise<void> {
    if (await this.refuseSharedStateDir(rec, decision)) return;
    await this.host.services.files(rec.service)?.removeEcho(rec.id);
    await this.host.agents.of(rec).removeState(rec.stateDir);
    await this.provisionEcho(rec, decision);
  }

  /**
   * Redundancy is back once the new echo has caught up: close the degraded window then. With
   * `failover.failback: auto`, a deposed primary that has rejoined and caught up gets its role back by a
   * planned switchover.
   */
  #restoreWhen(rec: InstanceRecord, caughtUp: () => Promise<boolean>): void {
    const service = rec.service;
    const last = this.#last.get(service);
    if (!last || last.restoredAt !== undefined) return;
    // A failed wait (the echo's agent unreachable: distributed mode) leaves redundancy not restored.
    const waited = caughtUp().catch(() => false);
    void waited.then(async (ok) => {
      if (!ok || last.restoredAt !== undefined || this.#last.get(service) !== last) return;
      last.restoredAt = this.host.clock.now();
      if (
        last.kind === 'failover' &&
        last.from === rec.id &&
        this.host.specOf(service).failover.failback === 'auto'
      ) {
        await this.switchover(service, rec.id).catch(() => undefined); // recorded as a decision either way
      }
    });
  }
}
