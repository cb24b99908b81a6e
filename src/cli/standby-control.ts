import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { ApiControl } from '../api/index.js';
import type { ServiceSpec } from '../config/index.js';
import {
  serviceView,
  specCounts,
  type ControlDecision,
  type InstanceRecord,
  type LeaderInfo,
  type ServiceView,
} from '../control/index.js';
import { ErrorCode, UnderstudyError } from '../errors/index.js';
import type { StateStore, Unwatch } from '../store/index.js';

/** Options of {@link StandbyControl.create}. */
export interface StandbyControlOptions {
  /** The shared store (read only: a standby never writes through this view). */
  store: StateStore;
  /** The services of the spec file the replica runs. */
  specs: readonly ServiceSpec[];
  /** Who leads now, as the replica's election last saw it. */
  leader: () => LeaderInfo | undefined;
}

/**
 * What the API of a standby control replica serves: reads answered from the store (services with their
 * epochs and instance records, decisions), and every write refused with UNDERSTUDY_ERR_NOT_LEADER (503)
 * naming the leader's API address, so that a client can send it there (`understudy` CLI commands do).
 * It keeps the instance records by list and watch; it never writes to the store.
 */
export class StandbyControl implements ApiControl {
  readonly #store: StateStore;
  readonly #specs: readonly ServiceSpec[];
  readonly #leader: () => LeaderInfo | undefined;
  readonly #records = new Map<string, InstanceRecord>();
  readonly #delay = monitorEventLoopDelay({ resolution: 20 });
  #unwatch: Unwatch | undefined;
  readonly decisions: ApiControl['decisions'];

  private constructor(options: StandbyControlOptions) {
    this.#store = options.store;
    this.#specs = options.specs;
    this.#leader = options.leader;
    this.decisions = {
      list: (query = {}) => this.#decisions(query),
      // A standby records no decision; the leader's stream is on the leader's API.
      subscribe: () => () => undefined,
    };
  }

  /** Lists the instance records and follows them. Thrown: the store's errors. */
  static async create(options: StandbyControlOptions): Promise<StandbyControl> {
    const standby = new StandbyControl(options);
    const snap = await options.store.snapshot('instances/');
    for (const r of snap.records) standby.#learn(r.key, r.value);
    standby.#unwatch = await options.store.watch(
      'instances/',
      (e) => {
        if (e.type === 'put' && e.record) standby.#learn(e.key, e.record.value);
        else standby.#records.delete(e.key);
      },
      // A watch that ends (compaction, store trouble) leaves the last records: reads may then be stale.
      { fromRevision: snap.revision, onError: () => undefined },
    );
    standby.#delay.enable();
    return standby;
  }

  /** Stops following the store. Idempotent. */
  close(): void {
    this.#unwatch?.();
    this.#unwatch = undefined;
    this.#delay.disable();
  }

  #learn(key: string, value: string): void {
    try {
      this.#records.set(key, JSON.parse(value) as InstanceRecord);
    } catch {
      this.#records.delete(key);
    }
  }

  async services(): Promise<ServiceView[]> {
    const out: ServiceView[] = [];
    for (const spec of this.#specs) {
      const instances = this.instances().filter((i) => i.service === spec.name && i.phase !== 'stopped');
      out.push(
        serviceView(spec, await this.#store.epoch(spec.name), instances, {
          plane: undefined,
          files: undefined,
          last: undefined,
          desired: specCounts(spec),
          scaling: undefined,
        }),
      );
    }
    return out;
  }

  instances(): InstanceRecord[] {
    return [...this.#records.values()];
  }

  async #decisions(query: { after?: number; limit?: number; service?: string }): Promise<ControlDecision[]> {
    const out: ControlDecision[] = [];
    for (const r of await this.#store.list('events/')) {
      try {
        const d = JSON.parse(r.value) as ControlDecision;
        if (typeof d.seq !== 'number' || d.seq <= (query.after ?? 0)) continue;
        if (query.service !== undefined && d.service !== query.service) continue;
        out.push(d);
      } catch {
        // not a decision
      }
    }
    out.sort((a, b) => a.seq - b.seq);
    return query.limit === undefined ? out : out.slice(-query.limit);
  }

  /** The refusal of a write: who leads and where its API is, when known. */
  notLeader(what: string): UnderstudyError {
    const leader = this.#leader();
    const where = leader?.address
      ? `; the leader is ${leader.id} at ${leader.address}`
      : leader
        ? `; the leader is ${leader.id} (its API address is not known yet)`
        : '; no replica leads at the moment, try again shortly';
    return new UnderstudyError(ErrorCode.NotLeader, `${what}: this control replica is a standby${where}`, {
      details: { ...(leader?.address ? { leader: leader.address } : {}), leaderId: leader?.id ?? null },
    });
  }

  forceFailover(): Promise<ControlDecision> {
    return Promise.reject(this.notLeader('failover'));
  }
  switchover(): Promise<ControlDecision> {
    return Promise.reject(this.notLeader('switchover'));
  }
  restartInstance(): Promise<ControlDecision> {
    return Promise.reject(this.notLeader('restart'));
  }
  pause(): Promise<ControlDecision> {
    return Promise.reject(this.notLeader('pause'));
  }
  resume(): Promise<ControlDecision> {
    return Promise.reject(this.notLeader('resume'));
  }

  eventLoopDelay(): { p50Ms: number; p99Ms: number; maxMs: number } {
    const ms = (ns: number): number => Math.round((ns / 1e6) * 10) / 10;
    return {
      p50Ms: ms(this.#delay.percentile(50)),
      p99Ms: ms(this.#delay.percentile(99)),
      maxMs: ms(this.#delay.max),
    };
  }
}

/**
 * Where a standby's API listens: the configured host with a port of its own (0). A fixed port is the
 * leader's: a deposed replica's standby API must never hold it while another replica's term (on the
 * same host) binds it. Clients find the standby through its data directory's `api.json`.
 */
export function standbyListen(listen: string): string {
  const colon = listen.lastIndexOf(':');
  return colon < 0 ? listen : `${listen.slice(0, colon)}:0`;
}
