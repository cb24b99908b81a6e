import { randomUUID } from 'node:crypto';
import type { ServiceSpec } from '../config/index.js';
import { ErrorCode, UnderstudyError } from '../errors/index.js';
import { Router, type RouterStats } from '../router/index.js';
import type { StateStore, Unwatch, WatchEvent } from '../store/index.js';
import {
  HOSTS_PREFIX,
  INSTANCE_PREFIX,
  PROMOTION_PREFIX,
  ROUTER_PREFIX,
  ROUTING_PREFIX,
  SERVICE_PREFIX,
  parseHostAddress,
  parseInstance,
  parseIntent,
  parseRouting,
  routeState,
  type RouteState,
  type RouteTarget,
  type RoutedInstance,
  type RoutedIntent,
  type RouterRegistration,
  type RoutingRecord,
} from './route-state.js';
import { parseStoredSpec, routerOptionsOf } from './router-spec.js';

/** Options of {@link RouterNode.create}. */
export interface RouterNodeOptions {
  /** The store the control plane writes (SQLite data directory or etcd). */
  store: StateStore;
  /** The service routed. Its spec is read from the store (`services/<name>`). */
  service: string;
  /** Public address `host:port`, overriding the spec's `routing.listen`. @default the spec's `routing.listen`, else `127.0.0.1:0` */
  listen?: string;
  /**
   * Longest a promotion (intent or switchover pause) may hold mutating requests, ms. Past it the router
   * serves the running primary of the current epoch again: a control plane that died mid-promotion does
   * not hold writes forever, and the epoch still fences a deposed primary.
   * @default 10000
   */
  maxPauseMs?: number;
  /** How often the service's epoch is re-read when no record changes, ms (epochs are not watched). @default 1000 */
  epochPollMs?: number;
  /** Wait before listing and watching again after the store failed, ms. @default 500 */
  retryMs?: number;
  /**
   * TTL of the lease its registration `routers/<service>/<id>` is attached to, ms (renewed every third of
   * it). A router that dies is forgotten by the control plane this long after. @default 3000
   */
  registrationTtlMs?: number;
  /** Told every change the node applies to its router (one line, for logs). @default nothing */
  onChange?: (line: string, state: RouteState) => void;
  /** Told when the store fails (the router keeps serving what it had). @default nothing */
  onStoreError?: (err: Error) => void;
}

/** What {@link RouterNode.stats} reports. */
export interface RouterNodeStats {
  service: string;
  address: { host: string; port: number };
  epoch: number;
  serving: string[];
  shadows: string[];
  paused: boolean;
  /** Primary records refused because their epoch was older than the router's (counted once per record version). */
  staleRecords: number;
  /** Promotion intents or switchover pauses ignored because they were from an older epoch. */
  staleIntents: number;
  /** Pauses that lasted past `maxPauseMs` and were lifted by the bound. */
  pauseExpiries: number;
  /** Times listing, watching or reading the epoch failed (serving went on with the last state). */
  storeErrors: number;
  router: RouterStats;
}

/**
 * A router that follows the store: it lists then watches the instance records, the promotion intent and
 * the control plane's routing record of one service, re-reads the service's epoch, and drives a
 * {@link Router} from {@link routeState}. It needs no control plane to keep serving: with every control
 * process gone, requests keep flowing to the primary the store last named.
 */
export class RouterNode {
  readonly router: Router;
  readonly #store: StateStore;
  readonly #spec: ServiceSpec;
  readonly #opts: Required<
    Pick<RouterNodeOptions, 'maxPauseMs' | 'epochPollMs' | 'retryMs' | 'registrationTtlMs'>
  > &
    Pick<RouterNodeOptions, 'onChange' | 'onStoreError'>;
  readonly #instances = new Map<string, RoutedInstance>();
  #intent: RoutedIntent | undefined;
  #routing: RoutingRecord | undefined;
  /** Addresses from the agents' host records (`hosts/<host>`): they win over the routing record's. */
  readonly #hostAddresses = new Map<string, string>();
  #storeEpoch = 0;
  #unwatch: Unwatch[] = [];
  #poll: NodeJS.Timeout | undefined;
  #retry: NodeJS.Timeout | undefined;
  #pauseTimer: NodeJS.Timeout | undefined;
  /** The pause in force: what it is (cause and epoch) and when it was first seen. */
  #pauseSeen: { key: string; at: number } | undefined;
  #applied: { serving: string; shadows: string; paused: boolean } = {
    serving: '',
    shadows: '',
    paused: false,
  };
  #last: RouteState | undefined;
  readonly #staleSeen = new Set<string>();
  #counters = { staleRecords: 0, staleIntents: 0, pauseExpiries: 0, storeErrors: 0 };
  /** This router's registration in the store, and the lease it is attached to. */
  readonly #registration: RouterRegistration;
  #lease: string | undefined;
  /** The pause epoch being acknowledged (waiting for forwarded mutations to be answered). */
  #acking: number | undefined;
  #renew: NodeJS.Timeout | undefined;
  #computing = false;
  #again = false;
  #closed = false;

  private constructor(router: Router, spec: ServiceSpec, options: RouterNodeOptions) {
    this.router = router;
    this.#store = options.store;
    this.#spec = spec;
    const a = router.address;
    this.#registration = {
      id: randomUUID().slice(0, 8),
      service: spec.name,
      address: `${a.host}:${a.port}`,
      at: Date.now(),
    };
    this.#opts = {
      maxPauseMs: options.maxPauseMs ?? 10_000,
      epochPollMs: options.epochPollMs ?? 1000,
      retryMs: options.retryMs ?? 500,
      registrationTtlMs: options.registrationTtlMs ?? 3000,
      ...(options.onChange ? { onChange: options.onChange } : {}),
      ...(options.onStoreError ? { onStoreError: options.onStoreError } : {}),
    };
  }

  /**
   * Reads the service's spec from the store, starts its router, lists and watches the store and applies
   * the first state before resolving.
   * Thrown: UNDERSTUDY_ERR_NOT_FOUND when the store has no such service (its control plane never ran),
   * UNDERSTUDY_ERR_ROUTER_CONFIG for a service this router cannot serve alone (hot echoes, no ports),
   * UNDERSTUDY_ERR_PORT when the address is taken.
   */
  static async create(options: RouterNodeOptions): Promise<RouterNode> {
    const key = SERVICE_PREFIX + options.service;
    const stored = await options.store.get(key);
    if (!stored)
      throw new UnderstudyError(
        ErrorCode.NotFound,
        `the store has no service '${options.service}': start its control plane first (understudy up)`,
        { details: { key } },
      );
    const spec = parseStoredSpec(key, stored.value);
    if (Object.keys(spec.ports).length === 0)
      throw new UnderstudyError(
        ErrorCode.RouterConfig,
        `service '${spec.name}' has no ports: there is nothing to route`,
      );
    if (spec.echo.mode === 'hot' && spec.routing.protocol === 'http')
      throw new UnderstudyError(
        ErrorCode.RouterConfig,
        `service '${spec.name}' has hot echoes: their mutation log is kept by the router in the control process, and a standalone router would bypass it; use warm or cold echoes to route it from 'understudy router'`,
        { details: { field: 'echo.mode' } },
      );
    const epoch = await options.store.epoch(spec.name);
    const router = await Router.create(routerOptionsOf(spec, epoch, options.listen));
    const node = new RouterNode(router, spec, options);
    try {
      await node.#follow();
    } catch (err) {
      await router.close();
      throw err;
    }
    node.#poll = setInterval(() => node.#recompute(), node.#opts.epochPollMs);
    node.#poll.unref();
    await node.#register().catch((err: unknown) => node.#storeFailed(err as Error));
    node.#renew = setInterval(() => void node.#keepRegistered(), node.#opts.registrationTtlMs / 3);
    node.#renew.unref();
    return node;
  }

  /** The service routed. */
  get service(): string {
    return this.#spec.name;
  }

  /** The state last applied. */
  get state(): RouteState | undefined {
    return this.#last;
  }

  stats(): RouterNodeStats {
    const s = this.#last;
    return {
      service: this.#spec.name,
      address: this.router.address,
      epoch: this.router.epoch,
      serving: this.router.backends,
      shadows: s?.shadows.map((t) => t.id) ?? [],
      paused: this.#applied.paused,
      ...this.#counters,
      router: this.router.stats(),
    };
  }

  /** Stops following the store and closes the router (in-flight requests get `graceMs`). Idempotent. */
  async close(options: { graceMs?: number } = {}): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#stopWatching();
    clearInterval(this.#poll);
    clearInterval(this.#renew);
    clearTimeout(this.#retry);
    clearTimeout(this.#pauseTimer);
    if (this.#lease) await this.#store.revokeLease(this.#lease).catch(() => undefined);
    await this.router.close({ graceMs: options.graceMs ?? 1000 });
  }

  /** Writes this router's registration under a fresh lease. */
  async #register(): Promise<void> {
    const lease = await this.#store.grantLease(this.#opts.registrationTtlMs);
    this.#lease = lease.id;
    await this.#writeRegistration();
  }

  async #writeRegistration(): Promise<void> {
    if (!this.#lease || this.#closed) return;
    const key = `${ROUTER_PREFIX}${this.#spec.name}/${this.#registration.id}`;
    await this.#store.put(key, JSON.stringify(this.#registration), { leaseId: this.#lease });
  }

  /** Renews the lease; a lease that lapsed (the store was away too long) is replaced and the record written again. */
  async #keepRegistered(): Promise<void> {
    if (this.#closed) return;
    try {
      if (this.#lease) await this.#store.keepAlive(this.#lease);
      else await this.#register();
    } catch (err) {
      this.#counters.storeErrors++;
      this.#opts.onStoreError?.(err as Error);
      this.#lease = undefined;
    }
  }

  /** Tells the control plane this router holds mutations for the switchover pause of `epoch`. */
  #acknowledge(epoch: number): void {
    if (this.#registration.holding === epoch) return;
    this.#registration.holding = epoch;
    this.#registration.at = Date.now();
    this.#writeRegistration().catch((err: unknown) => {
      delete this.#registration.holding;
      this.#storeFailed(err as Error);
    });
  }

  /** Lists the three kinds of records, watches each from its list's revision, and applies the state. */
  async #follow(): Promise<void> {
    this.#stopWatching();
    const service = this.#spec.name;
    const promotionKey = PROMOTION_PREFIX + service;
    const routingKey = ROUTING_PREFIX + service;
    const [instances, promotions, routing, hosts] = await Promise.all([
      this.#store.snapshot(INSTANCE_PREFIX),
      this.#store.snapshot(promotionKey),
      this.#store.snapshot(routingKey),
      this.#store.snapshot(HOSTS_PREFIX),
    ]);
    this.#hostAddresses.clear();
    for (const r of hosts.records) this.#learnHost(r.key, r.value);
    this.#instances.clear();
    for (const r of instances.records) this.#learnInstance(r.key, r.value);
    this.#intent = undefined;
    for (const r of promotions.records) if (r.key === promotionKey) this.#intent = parseIntent(r.value);
    this.#routing = undefined;
    for (const r of routing.records) if (r.key === routingKey) this.#routing = parseRouting(r.value);
    const onError = (err: Error): void => this.#storeFailed(err);
    const watch = async (prefix: string, revision: number, fn: (e: WatchEvent) => void): Promise<void> => {
      this.#unwatch.push(await this.#store.watch(prefix, fn, { fromRevision: revision, onError }));
    };
    await watch(INSTANCE_PREFIX, instances.revision, (e) => {
      if (e.type === 'put' && e.record) this.#learnInstance(e.key, e.record.value);
      else this.#instances.delete(e.key);
      this.#recompute();
    });
    await watch(promotionKey, promotions.revision, (e) => {
      if (e.key !== promotionKey) return;
      this.#intent = e.type === 'put' && e.record ? parseIntent(e.record.value) : undefined;
      this.#recompute();
    });
    await watch(HOSTS_PREFIX, hosts.revision, (e) => {
      if (e.type === 'put' && e.record) this.#learnHost(e.key, e.record.value);
      else this.#hostAddresses.delete(e.key.slice(HOSTS_PREFIX.length));
      this.#recompute();
    });
    await watch(routingKey, routing.revision, (e) => {
      if (e.key !== routingKey) return;
      this.#routing = e.type === 'put' && e.record ? parseRouting(e.record.value) : undefined;
      this.#recompute();
    });
    await this.#computeNow();
  }

  #learnHost(key: string, value: string): void {
    const host = key.slice(HOSTS_PREFIX.length);
    const address = parseHostAddress(value);
    if (address) this.#hostAddresses.set(host, address);
    else this.#hostAddresses.delete(host);
  }

  #learnInstance(key: string, value: string): void {
    const rec = parseInstance(value);
    if (rec) this.#instances.set(key, rec);
    else this.#instances.delete(key);
  }

  #stopWatching(): void {
    for (const u of this.#unwatch.splice(0)) u();
  }

  /** The store failed: keep serving the last state, list and watch again after `retryMs`. */
  #storeFailed(err: Error): void {
    this.#counters.storeErrors++;
    this.#opts.onStoreError?.(err);
    if (this.#closed || this.#retry) return;
    this.#stopWatching();
    this.#retry = setTimeout(() => {
      this.#retry = undefined;
      if (this.#closed) return;
      this.#follow().catch((e: unknown) => this.#storeFailed(e as Error));
    }, this.#opts.retryMs);
    this.#retry.unref();
  }

  /** Recomputes soon (coalesced): the epoch is read from the store first. */
  #recompute(): void {
    if (this.#closed) return;
    if (this.#computing) {
      this.#again = true;
      return;
    }
    void this.#computeNow();
  }

  async #computeNow(): Promise<void> {
    this.#computing = true;
    try {
      do {
        this.#again = false;
        try {
          this.#storeEpoch = await this.#store.epoch(this.#spec.name);
        } catch (err) {
          // The store is unreachable: decide on the epoch last read (it only ever grows).
          this.#counters.storeErrors++;
          this.#opts.onStoreError?.(err as Error);
        }
        if (this.#closed) return;
        this.#apply(this.#decide());
      } while (this.#again && !this.#closed);
    } finally {
      this.#computing = false;
    }
  }

  #decide(): RouteState {
    const base = {
      service: this.#spec.name,
      ...(this.#spec.routing.port ? { portName: this.#spec.routing.port } : {}),
      storeEpoch: this.#storeEpoch,
      routerEpoch: this.router.epoch,
      instances: [...this.#instances.values()],
      ...(this.#intent ? { intent: this.#intent } : {}),
      ...(this.#routing || this.#hostAddresses.size
        ? {
            routing: {
              service: this.#spec.name,
              ...this.#routing,
              hosts: { ...this.#routing?.hosts, ...Object.fromEntries(this.#hostAddresses) },
            },
          }
        : {}),
      ...(this.#spec.shadow.count > 0 || this.#spec.shadow.onForecast
        ? { shadows: { sample: this.#spec.shadow.sample } }
        : {}),
    };
    const first = routeState(base);
    if (!first.pauseCause) {
      this.#pauseSeen = undefined;
      return first;
    }
    // The bound of a pause runs from when this router first saw it (clocks of other hosts are not used).
    const key = `${first.pauseCause}@${first.pauseCause === 'promotion' ? this.#intent?.next : this.#routing?.pause?.epoch}`;
    const now = Date.now();
    if (this.#pauseSeen?.key !== key) this.#pauseSeen = { key, at: now };
    const left = this.#pauseSeen.at + this.#opts.maxPauseMs - now;
    if (left > 0) {
      clearTimeout(this.#pauseTimer);
      this.#pauseTimer = setTimeout(() => this.#recompute(), left + 1);
      this.#pauseTimer.unref();
      return first;
    }
    return routeState({ ...base, pauseExpired: true });
  }

  #apply(state: RouteState): void {
    const changes: string[] = [];
    for (const id of state.stale) {
      const rec = [...this.#instances.values()].find((i) => i.id === id);
      const k = `${id}@${rec?.epoch}`;
      if (this.#staleSeen.has(k)) continue;
      this.#staleSeen.add(k);
      this.#counters.staleRecords++;
      changes.push(`refused ${id}: its epoch ${rec?.epoch} is older than ${state.epoch}`);
    }
    if (state.staleIntent && !this.#last?.staleIntent) {
      this.#counters.staleIntents++;
      changes.push(`ignored a promotion from an epoch older than ${state.epoch}`);
    }
    if (state.epoch > this.router.epoch) {
      this.router.setEpoch(state.epoch);
      changes.push(`epoch ${state.epoch}: older backends fenced`);
    }
    const serving = describe(state.serving);
    if (serving !== this.#applied.serving) {
      const [only] = state.serving;
      if (state.serving.length === 1 && only) this.router.switchTo(only);
      else this.router.setBackends(state.serving);
      this.#applied.serving = serving;
      changes.push(
        state.serving.length
          ? `serving ${state.serving.map((t) => t.id).join(', ')} at epoch ${state.epoch}`
          : `no primary to serve at epoch ${state.epoch} (requests wait, then 503)`,
      );
    }
    const shadows = describe(state.shadows) + `~${state.sample}`;
    if (shadows !== this.#applied.shadows && (state.shadows.length || this.#applied.shadows)) {
      this.router.setShadows(state.shadows, state.sample);
      changes.push(`shadows: ${state.shadows.map((t) => t.id).join(', ') || 'none'}`);
    }
    this.#applied.shadows = shadows;
    if (state.paused !== this.#applied.paused) {
      this.#applied.paused = state.paused;
      if (state.paused) {
        void this.router.pause();
        changes.push(`mutations held: ${state.pauseCause} in flight`);
      } else {
        this.router.resume();
        if (state.pauseCause) {
          this.#counters.pauseExpiries++;
          changes.push(`mutations released: the ${state.pauseCause} lasted past ${this.#opts.maxPauseMs} ms`);
        } else changes.push('mutations released');
      }
    }
    // A switchover's pause is acknowledged once the mutations already forwarded are answered.
    const pause = this.#routing?.pause;
    if (state.paused && pause && this.#registration.holding !== pause.epoch && this.#acking !== pause.epoch) {
      this.#acking = pause.epoch;
      void this.router.pause().then(() => {
        this.#acking = undefined;
        if (this.#applied.paused && this.#routing?.pause?.epoch === pause.epoch)
          this.#acknowledge(pause.epoch);
      });
    }
    this.#last = state;
    if (changes.length) this.#opts.onChange?.(`${this.#spec.name}: ${changes.join('; ')}`, state);
  }
}

function describe(targets: readonly RouteTarget[]): string {
  return targets.map((t) => `${t.id}=${t.host}:${t.port}@${t.epoch}`).join(',');
}
