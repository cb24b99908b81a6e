import type { ServiceSpec } from '../config/index.js';
import { ErrorCode, UnderstudyError } from '../errors/index.js';
import type { PromotionObserver } from '../telemetry/index.js';
import {
  provisionEcho,
  recreateEcho,
  refuseSharedStateDir,
  type EchoProvisionContext,
} from './echo-provision.js';
import { ExternalEchoes } from './external-echo.js';
import {
  PROMOTION_WORK,
  type FailoverCause,
  type FailoverHost,
  type FailoverRecord,
} from './failover-host.js';
import { moveInstance } from './instance-transition.js';
import type { KeyedWorkQueue } from './keyed-work-queue.js';
import { promoteNow, runPromotionHook } from './promotion.js';
import type { ControlDecision, InstanceRecord } from './records.js';

// The failover's types live beside it (`failover-host.ts`), shared with the promotion and provisioning.
export { PROMOTION_PREFIX, PROMOTION_WORK } from './failover-host.js';
export type { FailoverCause, FailoverHost, FailoverRecord } from './failover-host.js';

/** What a {@link Failover} reports to and queues on, besides its instances. */
export interface FailoverDeps {
  /** Where promotions and their durations are reported (the control plane's telemetry). */
  readonly telemetry: PromotionObserver;
  /** The per-service work queue: a promotion holds its service (label {@link PROMOTION_WORK}). */
  readonly work: KeyedWorkQueue;
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
  /** What echo provisioning works with (`echo-provision.ts`). */
  readonly #provision: EchoProvisionContext;

  constructor(
    private readonly host: FailoverHost,
    deps: FailoverDeps,
  ) {
    this.#telemetry = deps.telemetry;
    this.#work = deps.work;
    this.external = new ExternalEchoes(host);
    this.#provision = {
      host,
      external: this.external,
      last: this.#last,
      restoreWhen: (rec, caughtUp) => this.#restoreWhen(rec, caughtUp),
    };
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
      promoteNow(
        { host: this.host, external: this.external, telemetry: this.#telemetry, last: this.#last },
        { service, old, target, decision, kind, cause },
      ),
    );
  }

  /**
   * Tells a promoted warm echo that it is the primary now (the spec's `echo.promote` hook).
   * Thrown: UNDERSTUDY_ERR_FAILOVER when the HTTP hook does not answer or answers an error.
   */
  async promotionHook(target: InstanceRecord, spec: ServiceSpec): Promise<void> {
    await runPromotionHook(this.host, target, spec);
  }

  /** Brings a slot back as an echo of the current primary: see {@link provisionEcho} (`echo-provision.ts`). */
  async provisionEcho(rec: InstanceRecord, decision: ControlDecision): Promise<void> {
    await provisionEcho(this.#provision, rec, decision);
  }

  /** Refuses to delete a state directory another instance uses: see {@link refuseSharedStateDir}. */
  async refuseSharedStateDir(rec: InstanceRecord, decision: ControlDecision): Promise<boolean> {
    return refuseSharedStateDir(this.host, rec, decision);
  }

  /** Seed 002: recreates an echo whose state sync keeps failing: see {@link recreateEcho}. */
  async recreateEcho(rec: InstanceRecord, decision: ControlDecision): Promise<void> {
    await recreateEcho(this.#provision, rec, decision);
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
