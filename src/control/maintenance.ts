import type { StateStore } from '../store/index.js';
import type { DecisionLog } from './decision-log.js';
import type { FailoverCause } from './failover.js';
import type { ControlDecision } from './records.js';

/** Store key prefix of paused services (`paused/<service>`). */
export const PAUSED_PREFIX = 'paused/';

/** Why and since when a service is paused, as stored under `paused/<service>`. */
export interface PauseRecord {
  /** When it was paused, ms since the epoch. */
  at: number;
  /** The reason given by the operator. */
  reason: string;
}

/** An automatic failover skipped while the service was paused: carried out on resume if still due. */
export interface PendingFailover {
  /** The primary that failed. */
  instance: string;
  cause: FailoverCause;
  /** The `skipped` decision that recorded it. */
  decision: number;
}

/**
 * Maintenance mode (patronictl's `pause`): a paused service gets no automatic failover and no
 * autoscaling; the control plane records what it would have done as a decision with outcome `skipped`.
 * Restarts in place under the restart policy, and every operator action (failover, switchover,
 * restart), still happen. The pause is stored under `paused/<service>`, so it survives a restart of the
 * control process.
 */
export class Maintenance {
  readonly #paused = new Map<string, PauseRecord>();
  readonly #pending = new Map<string, PendingFailover>();

  private constructor(
    private readonly store: StateStore,
    private readonly decisions: Pick<DecisionLog, 'record'>,
  ) {}

  /** Loads the paused services from the store. */
  static async create(store: StateStore, decisions: Pick<DecisionLog, 'record'>): Promise<Maintenance> {
    const m = new Maintenance(store, decisions);
    for (const r of await store.list(PAUSED_PREFIX)) {
      m.#paused.set(r.key.slice(PAUSED_PREFIX.length), JSON.parse(r.value) as PauseRecord);
    }
    return m;
  }

  /** Whether automatic actions on the service are held. */
  isPaused(service: string): boolean {
    return this.#paused.has(service);
  }

  /** The pause of a service, if paused. */
  pauseOf(service: string): PauseRecord | undefined {
    return this.#paused.get(service);
  }

  /** Pauses a service (idempotent: pausing a paused service keeps its first time and reason). */
  async pause(service: string, reason: string, now: number): Promise<ControlDecision> {
    const was = this.#paused.get(service);
    const rec = was ?? { at: now, reason };
    if (!was) await this.store.put(PAUSED_PREFIX + service, JSON.stringify(rec));
    this.#paused.set(service, rec);
    return this.decisions.record({
      kind: 'pause',
      service,
      what: `pause ${service}: maintenance mode`,
      why: was
        ? `already paused since ${new Date(was.at).toISOString()}: ${was.reason}`
        : `requested: ${reason}`,
      inputs: { pausedAt: rec.at, reason: rec.reason },
      outcome: { status: was ? 'recorded' : 'ok' },
    });
  }

  /**
   * Resumes a service. `carryOut` is given the failover skipped while it was paused, if any, and says
   * whether it was carried out (false: the primary is running again, nothing to do); the decision
   * records which.
   */
  async resume(
    service: string,
    reason: string,
    carryOut: (pending: PendingFailover) => boolean,
  ): Promise<ControlDecision> {
    const was = this.#paused.get(service);
    if (was) await this.store.delete(PAUSED_PREFIX + service);
    this.#paused.delete(service);
    const pending = this.#pending.get(service);
    this.#pending.delete(service);
    const done = pending ? carryOut(pending) : false;
    const after = pending
      ? done
        ? `; the failover of ${pending.instance} skipped while paused (decision ${pending.decision}) is carried out now`
        : `; the failover of ${pending.instance} skipped while paused is dropped: it is running again`
      : '';
    return this.decisions.record({
      kind: 'resume',
      service,
      what: `resume ${service}: automatic failover and scaling again`,
      why: (was ? `requested: ${reason}` : 'it was not paused') + after,
      inputs: {
        ...(was ? { pausedAt: was.at, pauseReason: was.reason } : {}),
        ...(pending
          ? { pendingFailover: { instance: pending.instance, decision: pending.decision, carriedOut: done } }
          : {}),
      },
      outcome: { status: was ? 'ok' : 'recorded' },
    });
  }

  /**
   * Records the failover a paused service did not get (outcome `skipped`) and keeps it for the resume.
   * `candidates` are the echoes that would have been promoted, best first.
   */
  skipFailover(service: string, instance: string, cause: FailoverCause, candidates: string[]): void {
    const d = this.decisions.record({
      kind: 'failover',
      service,
      instance,
      what: `(paused) promote ${candidates[0] ?? '(no echo)'} in place of ${instance}`,
      why: `${cause.kind}: ${cause.detail}; the service is paused (maintenance mode), so nothing is promoted until 'understudy resume ${service}'`,
      inputs: { cause: cause.kind, evidence: cause.evidence, candidates, paused: true },
      outcome: { status: 'skipped', detail: 'service paused' },
    });
    this.#pending.set(service, { instance, cause, decision: d.seq });
  }
}
