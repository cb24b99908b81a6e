// The host lease an agent keeps in the store, and self-fencing (Patroni's rule): an agent that cannot
// renew its lease within a bound shorter than the TTL, and that reaches no other host either (it is cut
// off, not the store alone being down), fences its primaries before the lease can lapse and another
// instance be promoted in their place.
import { hostHeartbeat } from '../health/index.js';
import { HOSTS_PREFIX, hostKey, parseHostRecord, type HostRecord } from './host-record.js';

/** What {@link HostLease} needs of the store (`StateStore` of src/store, named by shape). */
export interface HostLeaseStore {
  grantLease(ttlMs: number): Promise<{ id: string }>;
  keepAlive(leaseId: string): Promise<unknown>;
  revokeLease(leaseId: string): Promise<void>;
  put(key: string, value: string, options?: { leaseId?: string }): Promise<unknown>;
  list(prefix: string): Promise<{ key: string; value: string }[]>;
}

/** Options of {@link HostLease}. */
export interface HostLeaseOptions {
  store: HostLeaseStore;
  /** The record kept at `hosts/<host>`. */
  record: HostRecord;
  /** TTL of the lease, ms (renewed every third of it, or of `fenceAfterMs` when that is shorter). */
  ttlMs: number;
  /**
   * Self-fencing bound: with no successful renewal for this long, and no other host answering, the
   * host's primaries are fenced. Must be shorter than `ttlMs`; 0 turns self-fencing off. Published in
   * the host record: control waits for it before an echo elsewhere takes over from a host it only
   * suspects, so a shorter bound is a faster failover under a partition (docs/hosts.md, the trade-off).
   * @default {@link DEFAULT_FENCE_AFTER_MS}, or two thirds of `ttlMs` when that is shorter
   */
  fenceAfterMs?: number;
  /** Fences one instance (stops it acknowledging: the agent's `fence`, a SIGKILL of its process group). */
  fence: (instanceId: string) => Promise<void>;
  /** Stops an instance this host no longer holds (its record moved to another host while cut off). */
  stop: (instanceId: string) => Promise<void>;
  /** Whether this agent runs an instance now. */
  runs: (instanceId: string) => Promise<boolean>;
  /** One line per event (lease lapsed, fenced, registered again). */
  log: (line: string) => void;
  /** Check period of the self-fencing bound, ms. @default 100 */
  checkMs?: number;
  /**
   * Whether another host answers (one is enough: this host is not cut off). @default a TCP connect to
   * each other host's agent (`hostHeartbeat`), timeout a quarter of the bound
   */
  peersAnswer?: (peers: readonly { host: string; address: string; port: number }[]) => Promise<boolean>;
}

interface KnownInstance {
  id: string;
  role: string;
  phase: string;
  host: string;
}

const LIVE = new Set(['starting', 'running', 'unhealthy']);

/**
 * The default self-fencing bound, ms (capped at two thirds of the lease TTL). Control lets an echo
 * elsewhere take over from a suspected host only once this bound (+ one heartbeat interval + a margin)
 * has passed since the host's last answer; its heartbeats suspect a silent host after about 0.8–1 s, so
 * with 600 ms the wait is (almost) nothing and the failover stays where it was. Renewals go every third
 * of it (200 ms), so two missed renewals are no fence; a slow store alone never fences (another host
 * answers). The trade-off (Patroni's ttl against loop_wait): docs/hosts.md.
 */
export const DEFAULT_FENCE_AFTER_MS = 600;

/** The self-fencing bound for a lease of `ttlMs` and an optional explicit bound, ms. */
export function fenceBound(ttlMs: number, fenceAfterMs?: number): number {
  return fenceAfterMs ?? Math.min(DEFAULT_FENCE_AFTER_MS, Math.floor((ttlMs * 2) / 3));
}

/** The renewal period of a lease of `ttlMs` with self-fencing bound `fenceAfterMs`, ms. */
export function renewEvery(ttlMs: number, fenceAfterMs: number): number {
  const third = Math.floor(ttlMs / 3);
  return Math.max(100, fenceAfterMs > 0 ? Math.min(third, Math.floor(fenceAfterMs / 3)) : third);
}

/**
 * Keeps `hosts/<host>` under a lease renewed every third of its TTL (a lapsed lease is replaced and the
 * record written again, one registration at a time), remembers from the store which instances of this
 * host are primaries, and fences them by itself when cut off: no renewal for `fenceAfterMs` and no other
 * host's agent answering a TCP connect (a store that is down while the hosts still see each other is
 * not a partition: nothing is fenced then, the service stays up). After registering again it stops the
 * instances whose records moved to another host meanwhile.
 */
export class HostLease {
  #lease: { id: string } | undefined;
  #lastRenewed = 0;
  #registering = false;
  #fenced = false;
  #checking = false;
  #closed = false;
  #known: KnownInstance[] = [];
  /** Instances ever recorded on this host (to stop those that moved away while it was cut off). */
  readonly #ranHere = new Set<string>();
  #peers: { host: string; address: string; port: number }[] = [];
  #timers: NodeJS.Timeout[] = [];
  readonly #fenceAfter: number;

  constructor(private readonly options: HostLeaseOptions) {
    this.#fenceAfter = fenceBound(options.ttlMs, options.fenceAfterMs);
  }

  /** The self-fencing bound in use, ms (0: off). */
  get fenceAfterMs(): number {
    return this.#fenceAfter;
  }

  /** Whether this agent fenced its primaries since it last registered. */
  get fenced(): boolean {
    return this.#fenced;
  }

  /** Registers the host and starts renewing and watching the bound. */
  async start(): Promise<void> {
    await this.#register();
    const every = renewEvery(this.options.ttlMs, this.#fenceAfter);
    this.#timers.push(setInterval(() => this.#renew(), every));
    if (this.#fenceAfter > 0)
      this.#timers.push(setInterval(() => void this.#check(), this.options.checkMs ?? 100));
    for (const t of this.#timers) t.unref();
  }

  /**
   * Stops renewing. Without `restartGraceMs` (or with 0) the lease is revoked and the record goes with
   * it: the host leaves. With it — a planned restart, the agent stopping with `--leave-running` — the
   * record is written again marked `restartingUntil: now + restartGraceMs` under a new lease of that
   * TTL, then the old lease is revoked: control holds the host's suspicion until then (its instances
   * run on), and the record lapses by itself — the host is lost, the ordinary path — when no agent of
   * this host registers again in time. Returns the end of the window (ms since the epoch), or
   * undefined when the lease was revoked (also when the hand-over could not be written).
   */
  async close(options: { restartGraceMs?: number } = {}): Promise<number | undefined> {
    this.#closed = true;
    for (const t of this.#timers) clearInterval(t);
    const lease = this.#lease;
    if (!lease) return undefined;
    const grace = options.restartGraceMs ?? 0;
    let until: number | undefined;
    if (grace > 0) {
      try {
        const window = await this.options.store.grantLease(grace);
        const end = Date.now() + grace;
        const record: HostRecord = { ...this.#published(), restartingUntil: end };
        await this.options.store.put(hostKey(record.host), JSON.stringify(record), { leaseId: window.id });
        until = end;
      } catch (e) {
        this.options.log(`cannot mark the planned restart (${(e as Error).message}); leaving instead`);
      }
    }
    // With the record under the window's lease, revoking the old one leaves it in place.
    await this.options.store.revokeLease(lease.id).catch(() => undefined);
    return until;
  }

  /** The record as written: with the self-fencing bound control waits for (see {@link HostRecord}). */
  #published(): HostRecord {
    return { ...this.options.record, fenceAfterMs: this.#fenceAfter };
  }

  async #register(): Promise<void> {
    const sent = Date.now();
    const lease = await this.options.store.grantLease(this.options.ttlMs);
    await this.options.store.put(hostKey(this.options.record.host), JSON.stringify(this.#published()), {
      leaseId: lease.id,
    });
    this.#lease = lease;
    this.#lastRenewed = sent;
    await this.#refresh();
  }

  #renew(): void {
    const lease = this.#lease;
    if (this.#closed || !lease || this.#registering) return;
    const sent = Date.now();
    this.options.store.keepAlive(lease.id).then(
      () => {
        if (this.#lease !== lease) return;
        this.#lastRenewed = Math.max(this.#lastRenewed, sent);
        // Reachable again before the lease lapsed: the next cut is watched for again.
        if (this.#fenced) this.#fenced = false;
        void this.#refresh().catch(() => undefined);
      },
      async () => {
        // Lapsed (or the store unreachable): register again with a new lease, one attempt at a time.
        if (this.#closed || this.#registering || this.#lease !== lease) return;
        this.#registering = true;
        try {
          await this.#register();
          this.options.log(`the host lease lapsed; registered again`);
          await this.#afterReturn();
        } catch (e) {
          this.options.log(`cannot register: ${(e as Error).message}`);
        } finally {
          this.#registering = false;
        }
      },
    );
  }

  /** Re-reads which instances are on this host (and their roles) and where the other hosts are. */
  async #refresh(): Promise<void> {
    const me = this.options.record.host;
    const known: KnownInstance[] = [];
    for (const r of await this.options.store.list('instances/')) {
      try {
        const v = JSON.parse(r.value) as Partial<KnownInstance>;
        if (typeof v.id === 'string' && typeof v.host === 'string')
          known.push({ id: v.id, role: String(v.role), phase: String(v.phase), host: v.host });
      } catch {
        // not an instance record
      }
    }
    const peers: { host: string; address: string; port: number }[] = [];
    for (const r of await this.options.store.list(HOSTS_PREFIX)) {
      const h = parseHostRecord(r.value);
      if (!h || h.host === me) continue;
      const url = new URL(h.url);
      peers.push({ host: h.host, address: url.hostname, port: Number(url.port) || 80 });
    }
    for (const k of known) if (k.host === me) this.#ranHere.add(k.id);
    this.#known = known;
    this.#peers = peers;
  }

  /**
   * The self-fence, on time: the peers are asked early enough (their probe's timeout plus one check
   * period before the bound) that the fence falls at the bound, not a probe timeout after it — control
   * counts on that deadline (it lets an echo elsewhere serve only once it has passed).
   */
  async #check(): Promise<void> {
    if (this.#closed || this.#fenced || this.#checking) return;
    const timeout = Math.max(50, this.#fenceAfter / 4);
    const silent = Date.now() - this.#lastRenewed;
    if (silent < this.#fenceAfter - timeout - (this.options.checkMs ?? 100)) return;
    this.#checking = true;
    try {
      // A store that is down while the hosts still reach each other is no partition of this host.
      if (this.#peers.length === 0) return;
      const peersAnswer =
        this.options.peersAnswer ??
        (async (peers) =>
          (await Promise.all(peers.map((p) => hostHeartbeat(p.address, p.port, timeout)))).includes(
            'answered',
          ));
      if (await peersAnswer(this.#peers)) return;
      const left = this.#lastRenewed + this.#fenceAfter - Date.now();
      if (left > 0) await new Promise((r) => setTimeout(r, left).unref());
      if (this.#closed || Date.now() - this.#lastRenewed < this.#fenceAfter) return;
      const me = this.options.record.host;
      const primaries = this.#known.filter((k) => k.host === me && k.role === 'primary' && LIVE.has(k.phase));
      this.#fenced = true;
      for (const p of primaries) {
        await this.options.fence(p.id).catch(() => undefined);
        this.options.log(
          `self-fenced primary ${p.id}: no lease renewal for ${Date.now() - this.#lastRenewed} ms (bound ${this.#fenceAfter} ms, TTL ${this.options.ttlMs} ms) and no other host answers`,
        );
      }
      if (primaries.length === 0)
        this.options.log(
          `cut off (no lease renewal for ${Date.now() - this.#lastRenewed} ms, no other host answers); no primary to fence`,
        );
    } finally {
      this.#checking = false;
    }
  }

  /** Back after a lapse: instances whose records moved to another host meanwhile are stopped here. */
  async #afterReturn(): Promise<void> {
    const me = this.options.record.host;
    for (const id of this.#ranHere) {
      const now = this.#known.find((k) => k.id === id);
      if (now && now.host === me && now.phase !== 'stopped') continue;
      if (!(await this.options.runs(id).catch(() => false))) continue;
      this.options.log(
        `stopping ${id}: its record moved to ${now?.host ?? '(none)'} while this host was cut off`,
      );
      await this.options.stop(id).catch(() => undefined);
      this.#ranHere.delete(id);
    }
    this.#fenced = false;
  }
}
