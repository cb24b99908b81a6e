import { ErrorCode, UnderstudyError, isUnderstudyError } from '../errors/index.js';
import type { Lease, StateStore, StoreGuard, StoreRecord, Unwatch } from '../store/index.js';

/** Store key of the control leader (the Patroni "leader key"). */
export const LEADER_KEY = 'control/leader';

/** Options of {@link LeaderElection.start}. */
export interface LeaderElectionOptions {
  store: StateStore;
  /** This candidate's name, unique among the replicas. */
  id: string;
  /** Where this candidate can be reached (shown to others), e.g. its API URL. @default '' */
  address?: string;
  /** The key campaigned for. @default {@link LEADER_KEY} */
  key?: string;
  /**
   * TTL of the leader lease. A leader that could not renew steps down before its lease can have
   * expired on the server; a standby takes over at most one TTL (plus one loop) after a leader dies.
   * On etcd it is rounded up to whole seconds. @default 3000
   */
  ttlMs?: number;
  /** Period of the loop (campaign or renew). Patroni's rule: loop + 2 × request timeout < TTL. @default ttlMs / 4 */
  loopMs?: number;
  /** Timeout of each store request of the loop. @default ttlMs / 3 */
  requestTimeoutMs?: number;
  /** Called with every change of this candidate's role. */
  onChange?: (event: LeadershipEvent) => void;
}

/** What the leader key holds. */
export interface LeaderInfo {
  id: string;
  address: string;
  /** When this leader was elected (ms since the epoch, its clock). */
  since: number;
  /** The term: the revision at which the leader key was created. */
  term: number;
}

/** A change of this candidate's role, or of who leads. */
export type LeadershipEvent =
  | { type: 'elected'; leader: LeaderInfo }
  | { type: 'deposed'; leader: LeaderInfo; reason: string }
  | { type: 'leader'; leader: LeaderInfo | undefined };

/**
 * Leader election on the store, Patroni's way (not etcd3's `Election`): a campaign is a transaction
 * creating the leader key only if it does not exist (`create_revision == 0`) under this candidate's
 * lease; the leader renews the lease every loop (TTL/4); everyone watches the key and campaigns at once when
 * it is deleted (resignation or lease expiry). A leader that has not renewed for TTL − one loop steps
 * down by itself, before the server can have let its lease lapse, so two leaders never act at once.
 * Every write of a leader should carry {@link LeaderElection.guard}: the store refuses it once the
 * term (the key's create revision) is over.
 */
export class LeaderElection {
  readonly #store: StateStore;
  readonly #id: string;
  #address: string;
  readonly #key: string;
  readonly #ttlMs: number;
  readonly #loopMs: number;
  readonly #requestMs: number;
  readonly #listeners = new Set<(event: LeadershipEvent) => void>();
  #lease: Lease | undefined;
  /** This candidate's term while it leads. */
  #mine: LeaderInfo | undefined;
  /** Who leads, as last seen. */
  #leader: LeaderInfo | undefined;
  /** Local (monotonic) time after which a leader that has not renewed must stop acting. */
  #stepDownAt = 0;
  #timer: NodeJS.Timeout | undefined;
  #stepDownTimer: NodeJS.Timeout | undefined;
  #unwatch: Unwatch | undefined;
  #running = false;
  #busy = false;
  #closed = false;

  private constructor(options: LeaderElectionOptions) {
    this.#store = options.store;
    this.#id = options.id;
    this.#address = options.address ?? '';
    this.#key = options.key ?? LEADER_KEY;
    this.#ttlMs = options.ttlMs ?? 3000;
    this.#loopMs = options.loopMs ?? Math.floor(this.#ttlMs / 4);
    this.#requestMs = options.requestTimeoutMs ?? Math.floor(this.#ttlMs / 3);
    if (!(this.#ttlMs > 0) || !(this.#loopMs > 0) || this.#loopMs + 2 * this.#requestMs >= this.#ttlMs) {
      throw new UnderstudyError(
        ErrorCode.Usage,
        `leader election needs loop (${this.#loopMs} ms) + 2 × request timeout (${this.#requestMs} ms) < TTL (${this.#ttlMs} ms)`,
        { details: { ttlMs: this.#ttlMs, loopMs: this.#loopMs, requestTimeoutMs: this.#requestMs } },
      );
    }
    if (options.onChange) this.#listeners.add(options.onChange);
  }

  /** Starts campaigning (and watching the leader). Resolves after the first campaign. */
  static async start(options: LeaderElectionOptions): Promise<LeaderElection> {
    const election = new LeaderElection(options);
    await election.#begin();
    return election;
  }

  /** Whether this candidate leads now (and may act). */
  get isLeader(): boolean {
    return this.#mine !== undefined && performance.now() < this.#stepDownAt;
  }

  /** This candidate's name. */
  get id(): string {
    return this.#id;
  }

  /** Who leads, as last seen (undefined: nobody, or not known yet). */
  leader(): LeaderInfo | undefined {
    return this.#leader;
  }

  /** The lease this candidate campaigns with (to attach records that must vanish with it). */
  get lease(): Lease | undefined {
    return this.#lease;
  }

  /** The guard of this leader's writes, or undefined when it does not lead. */
  guard(): StoreGuard | undefined {
    return this.isLeader && this.#mine ? { key: this.#key, createRevision: this.#mine.term } : undefined;
  }

  /**
   * Changes the address shown to others (e.g. once this leader's API listens). A leader rewrites its
   * key at once (same lease, same term: guarded by it).
   */
  async setAddress(address: string): Promise<void> {
    this.#address = address;
    const mine = this.#mine;
    const guard = this.guard();
    if (!mine || !guard || !this.#lease) return;
    const value = JSON.stringify({ id: this.#id, address, since: mine.since });
    await this.#store.put(this.#key, value, { leaseId: this.#lease.id, guard });
    if (this.#mine === mine) this.#mine = { ...mine, address };
  }

  /** Subscribes to role changes; returns the unsubscribe function. */
  subscribe(listener: (event: LeadershipEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Stops campaigning; a leader resigns (revokes its lease, deleting the key) so a standby takes over at once. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#timer);
    clearTimeout(this.#stepDownTimer);
    this.#unwatch?.();
    const lease = this.#lease;
    this.#depose('resigned: this replica is stopping');
    if (lease) await this.#store.revokeLease(lease.id).catch(() => undefined);
  }

  async #begin(): Promise<void> {
    this.#running = true;
    const current = await this.#store.get(this.#key);
    this.#setLeader(current && parseLeader(current));
    await this.#watchLeader();
    await this.#round();
    this.#scheduleRound();
  }

  /** Follows the leader key; a watch that fails (compaction, store trouble) is made again by the next round. */
  async #watchLeader(): Promise<void> {
    const from = await this.#store.revision();
    this.#unwatch = await this.#store.watch(
      this.#key,
      (event) => {
        if (event.key !== this.#key) return;
        if (event.type === 'delete') {
          this.#setLeader(undefined);
          if (this.#mine) this.#depose('the leader key was deleted (lease expired or revoked)');
          this.#kick();
        } else if (event.record) {
          const info = parseLeader(event.record);
          this.#setLeader(info);
          if (this.#mine && info?.term !== this.#mine.term)
            this.#depose(`${info?.id ?? 'another replica'} took the leader key`);
        }
      },
      {
        fromRevision: from,
        onError: () => {
          this.#unwatch = undefined;
          this.#kick();
        },
      },
    );
  }

  /** Runs a round at once (the leader key was deleted: campaign without waiting for the loop). */
  #kick(): void {
    if (this.#closed) return;
    void this.#round().then(() => this.#scheduleRound());
  }

  #scheduleRound(): void {
    if (this.#closed) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => void this.#round().then(() => this.#scheduleRound()), this.#loopMs);
    this.#timer.unref();
  }

  #rewatching = false;

  async #round(): Promise<void> {
    if (this.#closed || this.#busy || !this.#running) return;
    this.#busy = true;
    try {
      // A leader renews without waiting for the key to be followed again: making a watch again can
      // wait out the etcd client's reconnect backoff (a member lost), and renewals must keep their pace.
      if (this.#mine) {
        if (!this.#unwatch && !this.#rewatching) {
          this.#rewatching = true;
          void this.#watchLeader()
            .then(() => {
              if (this.#closed) this.#unwatch?.();
            })
            .catch(() => undefined)
            .finally(() => (this.#rewatching = false));
        }
        await this.#renew();
      } else {
        if (!this.#unwatch) await this.#timed(this.#watchLeader());
        await this.#campaign();
      }
    } catch {
      // The store is unreachable or slow: a leader steps down on its own timer; a standby retries next loop.
    } finally {
      this.#busy = false;
    }
  }

  async #campaign(): Promise<void> {
    // The lease is kept alive (or granted) from here: it lasts at least TTL past this instant.
    const leaseFrom = performance.now();
    if (this.#lease) {
      // Keep one lease across campaigns while it lives; a dead one is replaced.
      const alive = await this.#timed(this.#store.keepAlive(this.#lease.id)).catch((err: unknown) => {
        if (isUnderstudyError(err, ErrorCode.StoreLease)) return undefined;
        throw err;
      });
      this.#lease = alive;
    }
    this.#lease ??= await this.#timed(this.#store.grantLease(this.#ttlMs));
    const sentAt = performance.now();
    const since = Date.now();
    const value = JSON.stringify({ id: this.#id, address: this.#address, since });
    const created = await this.#timed(
      this.#store.compareAndSet(this.#key, value, { expectedRevision: 0, leaseId: this.#lease.id }),
    );
    if (this.#closed) return;
    if (!created) {
      const current = await this.#timed(this.#store.get(this.#key));
      const held = current && parseLeader(current);
      // An earlier campaign of ours took the key but answered after its round's deadline (a request
      // that first waited on a member cut off): the key is under our lease, kept alive at the start
      // of this round. Lead, or nobody would until that lease lapsed — and we keep renewing it.
      if (held && held.id === this.#id && current?.leaseId === this.#lease.id) {
        this.#mine = held;
        this.#renewed(leaseFrom);
        this.#setLeader(held);
        this.#emit({ type: 'elected', leader: held });
        return;
      }
      this.#setLeader(held);
      return;
    }
    const info: LeaderInfo = { id: this.#id, address: this.#address, since, term: created.createRevision };
    this.#mine = info;
    this.#renewed(sentAt);
    this.#setLeader(info);
    this.#emit({ type: 'elected', leader: info });
  }

  async #renew(): Promise<void> {
    const lease = this.#lease;
    const mine = this.#mine;
    if (!lease || !mine) return;
    const sentAt = performance.now();
    const renewal = this.#store.keepAlive(lease.id);
    // A renewal that answers after the loop's deadline still counts (the server extended the lease at
    // least TTL past `sentAt`): a busy event loop must not depose a leader whose renewals succeed.
    renewal.then(
      () => {
        if (this.#mine === mine) this.#renewed(sentAt);
      },
      (err: unknown) => {
        if (isUnderstudyError(err, ErrorCode.StoreLease) && this.#lease === lease) {
          this.#depose('the leader lease expired before it could be renewed');
        }
      },
    );
    await this.#timed(renewal);
  }

  /** A renewal sent at `sentAt` succeeded: the server's lease lasts at least TTL from then. */
  #renewed(sentAt: number): void {
    // Step down one loop before the lease could lapse on the server (renewals are sent every loop).
    this.#stepDownAt = sentAt + this.#ttlMs - this.#loopMs;
    this.#armStepDown();
  }

  /** Deposes this leader at #stepDownAt unless a renewal moved it (a timer may fire a little early: re-armed). */
  #armStepDown(): void {
    clearTimeout(this.#stepDownTimer);
    if (!this.#mine) return;
    const wait = this.#stepDownAt - performance.now();
    if (wait <= 0) {
      this.#depose(
        `could not renew the leader lease for ${this.#ttlMs - this.#loopMs} ms (store unreachable?)`,
      );
      return;
    }
    this.#stepDownTimer = setTimeout(() => this.#armStepDown(), Math.ceil(wait));
    this.#stepDownTimer.unref();
  }

  #depose(reason: string): void {
    const mine = this.#mine;
    if (!mine) return;
    this.#mine = undefined;
    this.#stepDownAt = 0;
    clearTimeout(this.#stepDownTimer);
    // Release the key if it is still ours (Patroni deletes it on demotion): otherwise a leader that
    // stepped down while its lease lived on would keep the key, and nobody would lead until it lapsed.
    const lease = this.#lease;
    this.#lease = undefined;
    if (lease) void this.#store.revokeLease(lease.id).catch(() => undefined);
    this.#emit({ type: 'deposed', leader: mine, reason });
  }

  #setLeader(info: LeaderInfo | undefined): void {
    const before = this.#leader;
    if (before?.id === info?.id && before?.term === info?.term && before?.address === info?.address) return;
    this.#leader = info;
    this.#emit({ type: 'leader', leader: info });
  }

  #emit(event: LeadershipEvent): void {
    for (const listener of [...this.#listeners]) {
      try {
        listener(event);
      } catch (err) {
        process.emitWarning(err instanceof Error ? err : new Error(String(err)));
      }
    }
  }

  /** A store request with the loop's deadline: a hung request must not hold up stepping down. */
  async #timed<T>(promise: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new UnderstudyError(ErrorCode.StoreUnavailable, `store request took over ${this.#requestMs} ms`),
          ),
        this.#requestMs,
      );
    });
    try {
      return await Promise.race([promise, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
}

/** The leader described by a leader-key record (undefined for a value that is not ours). */
export function parseLeader(record: StoreRecord): LeaderInfo | undefined {
  try {
    const value = JSON.parse(record.value) as { id?: unknown; address?: unknown; since?: unknown };
    if (typeof value.id !== 'string') return undefined;
    return {
      id: value.id,
      address: typeof value.address === 'string' ? value.address : '',
      since: typeof value.since === 'number' ? value.since : 0,
      term: record.createRevision,
    };
  } catch {
    return undefined;
  }
}
