import { guardedStore, type StateStore } from '../store/index.js';
import { LeaderElection, type LeaderInfo, type LeadershipEvent } from './leadership.js';

/** Store prefix where every control replica registers itself under its lease. */
export const REPLICAS_PREFIX = 'control/replicas/';

/** The work of one leadership term (a control plane, its API…), stopped when the term ends. */
export interface LeaderTerm {
  close(): Promise<void>;
}

/** Options of {@link ControlReplica.start}. */
export interface ControlReplicaOptions {
  /** The shared store (etcd). The replica's own records (leader key, registration) are written to it unguarded. */
  store: StateStore;
  /** This replica's name, unique among the replicas. */
  name: string;
  /** Where this replica can be reached (shown in status). @default '' */
  address?: string;
  /** Leader lease TTL (see {@link LeaderElection}). @default 3000 */
  ttlMs?: number;
  /**
   * Starts the work of a term when this replica is elected. `store` is the guarded view: every write
   * through it is refused with `UNDERSTUDY_ERR_NOT_LEADER` once the term is over, so nothing the term
   * does can act after a deposition.
   */
  startTerm: (store: StateStore, leader: LeaderInfo, previous: LeaderInfo | undefined) => Promise<LeaderTerm>;
  /** Every leadership event, and failures of a term's start or stop. */
  onEvent?: (event: LeadershipEvent) => void;
  onError?: (error: unknown, where: string) => void;
}

/** What a replica registers under {@link REPLICAS_PREFIX}. */
export interface ReplicaInfo {
  name: string;
  address: string;
  since: number;
}

/** A replica as shown by status: its registration, whether its lease is live, and whether it leads. */
export interface ReplicaView extends ReplicaInfo {
  leaseId?: string;
  leader: boolean;
}

/**
 * A control-plane replica: campaigns for leadership and runs a term (via `startTerm`) only while it
 * leads; when deposed (lease lost, store unreachable for TTL − one loop, resigned), it stops the term
 * before anyone else can have been elected. Knows nothing of agents or routers: the term decides what
 * runs (with in-process agents today, network agents found in the store once they exist).
 */
export class ControlReplica {
  readonly #options: ControlReplicaOptions;
  #election!: LeaderElection;
  #term: LeaderTerm | undefined;
  /** Term starts and stops run one after another, in event order (from once the election is assigned). */
  #chain: Promise<void>;
  #ready: () => void = () => undefined;
  #lastLeader: LeaderInfo | undefined;
  #registered: string | undefined;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  private constructor(options: ControlReplicaOptions) {
    this.#options = options;
    this.#chain = new Promise((resolve) => (this.#ready = resolve));
  }

  /** Starts campaigning; resolves after the first campaign (and the first term's start, if elected). */
  static async start(options: ControlReplicaOptions): Promise<ControlReplica> {
    const replica = new ControlReplica(options);
    replica.#election = await LeaderElection.start({
      store: options.store,
      id: options.name,
      ...(options.address !== undefined ? { address: options.address } : {}),
      ...(options.ttlMs !== undefined ? { ttlMs: options.ttlMs } : {}),
      onChange: (event) => replica.#onEvent(event),
    });
    replica.#ready();
    await replica.#register();
    const ttl = options.ttlMs ?? 3000;
    replica.#timer = setInterval(() => void replica.#register(), Math.max(100, Math.floor(ttl / 3)));
    replica.#timer.unref();
    await replica.#chain;
    return replica;
  }

  /** Whether this replica leads now. */
  get isLeader(): boolean {
    return this.#election.isLeader;
  }

  /** Who leads, as last seen. */
  leader(): LeaderInfo | undefined {
    return this.#election.leader();
  }

  /** The election (for its guard and events). */
  get election(): LeaderElection {
    return this.#election;
  }

  /** Changes the address shown in the leader key and this replica's registration (e.g. its API URL). */
  async setAddress(address: string): Promise<void> {
    this.#options.address = address;
    this.#registered = undefined;
    await this.#election.setAddress(address);
    await this.#register();
  }

  /** Settles once the term starts and stops requested so far are done. */
  async settled(): Promise<void> {
    await this.#chain;
  }

  /** Stops the term (if leading), resigns and deregisters. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    await this.#chain;
    const term = this.#term;
    this.#term = undefined;
    if (term) await term.close().catch((err: unknown) => this.#options.onError?.(err, 'stopping the term'));
    await this.#election.close();
  }

  #onEvent(event: LeadershipEvent): void {
    this.#options.onEvent?.(event);
    if (event.type === 'leader') {
      if (event.leader && event.leader.id !== this.#options.name) this.#lastLeader = event.leader;
      return;
    }
    if (event.type === 'elected') {
      const previous = this.#lastLeader;
      this.#enqueue('starting the term', async () => {
        if (this.#closed || !this.#election.isLeader || this.#term) return;
        // The guard is this term's, not whatever term the election holds when a write is made: a term
        // that was deposed and is still winding down (a promotion failing as its agents close) must not
        // write with the guard of a later term of this same replica.
        const term = event.leader.term;
        const store = guardedStore(this.#options.store, () => {
          const guard = this.#election.guard();
          return guard?.createRevision === term ? guard : undefined;
        });
        this.#term = await this.#options.startTerm(store, event.leader, previous);
      });
    } else {
      this.#enqueue('stopping the term', async () => {
        const term = this.#term;
        this.#term = undefined;
        await term?.close();
      });
    }
  }

  #enqueue(where: string, step: () => Promise<void>): void {
    this.#chain = this.#chain.then(step).catch((err: unknown) => this.#options.onError?.(err, where));
  }

  /** (Re-)registers this replica under its current election lease (a new lease after one expired). */
  async #register(): Promise<void> {
    const lease = this.#election.lease;
    if (this.#closed || !lease || lease.id === this.#registered) return;
    const info: ReplicaInfo = {
      name: this.#options.name,
      address: this.#options.address ?? '',
      since: Date.now(),
    };
    try {
      await this.#options.store.put(REPLICAS_PREFIX + this.#options.name, JSON.stringify(info), {
        leaseId: lease.id,
      });
      this.#registered = lease.id;
    } catch {
      // Retried on the next tick (the lease may have just expired; the election grants a new one).
    }
  }
}

/** The registered replicas with their lease and whether each leads (for status). */
export async function listReplicas(
  store: StateStore,
  leader: LeaderInfo | undefined,
): Promise<ReplicaView[]> {
  const out: ReplicaView[] = [];
  for (const record of await store.list(REPLICAS_PREFIX)) {
    try {
      const info = JSON.parse(record.value) as ReplicaInfo;
      out.push({
        name: info.name,
        address: info.address,
        since: info.since,
        ...(record.leaseId ? { leaseId: record.leaseId } : {}),
        leader: leader?.id === info.name,
      });
    } catch {
      // not ours
    }
  }
  return out;
}
