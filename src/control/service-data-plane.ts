import { LOOPBACK, type Clock } from '../agent/index.js';
import { ErrorCode, UnderstudyError } from '../errors/index.js';
import type { ServiceSpec } from '../config/index.js';
import {
  ServiceReplication,
  askAppliedSeq,
  replicationHooks,
  type EchoReplicationStats,
} from '../replication/index.js';
import { Router, type RouterStats } from '../router/index.js';
import {
  ROUTER_PREFIX,
  ROUTING_PREFIX,
  parseRegistration,
  routerOptionsOf,
  type RouterRegistration,
  type RoutingRecord,
} from '../router-node/index.js';
import type { StateStore, Unwatch } from '../store/index.js';
import { crashPoint } from './crash-points.js';
import type { InstanceRecord } from './records.js';

/** Options of {@link ServiceDataPlane}. */
export interface ServiceDataPlaneOptions {
  spec: ServiceSpec;
  /** The service's epoch at start; promotions raise it through the router. */
  epoch: number;
  /** The address an instance is reached at (its host's agent's address, from `InstanceRecord.host`). */
  addressOf: (rec: InstanceRecord) => string;
  /** An echo left or rejoined the synchronous set. */
  onEchoSyncChange?: (instanceId: string, inSync: boolean, reason: string) => void;
  /** Traffic now goes to this primary (for DNS and external load balancers). */
  onPrimary?: (rec: InstanceRecord, port: number) => void;
  /**
   * Where routers outside this process learn what instance records do not say: the routing record
   * `routing/<service>` (host addresses, a switchover's pause) is written there. @default not written
   */
  store?: StateStore;
  /** The address of each host instances run on (host name → address), for the routing record. @default {} */
  hosts?: Record<string, string>;
  /**
   * How long a switchover waits for every router registered under `routers/<service>/` to hold
   * mutations, ms; past it the switchover is called off. @default 2000
   */
  routerAckMs?: number;
  /**
   * Directory of the durable mutation log of a hot service (`<dataDir>/mutations/<service>`).
   * @default none: the log is kept in memory only
   */
  mutationLogDir?: string;
}

/** What status shows of a service's data plane. */
export interface DataPlaneView {
  /** The service's public address (the router). */
  address: string;
  mode: 'http' | 'tcp';
  serving: string[];
  epoch: number;
  requests?: number;
  replication?: {
    consistency: string;
    /** `serial` or `pipelined` (echo.mutations.order). */
    order?: 'serial' | 'pipelined';
    /** Pipelined: seqs numbered whose outcome is not known yet. */
    unresolved?: number;
    lastSeq: number;
    strictRefusals: number;
    echoes: EchoReplicationStats[];
  };
}

/**
 * The data plane of one service: its router (public address → current primary, switch on promotion,
 * fencing by epoch) and, for `hot` echoes over HTTP, the ordered mutation log replayed on every echo.
 */
export class ServiceDataPlane {
  /** The routing record as last written (undefined: no store to write it to). */
  #routing: RoutingRecord | undefined;
  readonly #store: StateStore | undefined;
  #routerAckMs = 2000;

  private constructor(
    readonly router: Router,
    readonly replication: ServiceReplication | undefined,
    private readonly spec: ServiceSpec,
    private readonly onPrimary: ((rec: InstanceRecord, port: number) => void) | undefined,
    private readonly addressOf: (rec: InstanceRecord) => string,
    store: StateStore | undefined,
  ) {
    this.#store = store;
  }

  static async create(options: ServiceDataPlaneOptions): Promise<ServiceDataPlane> {
    const { spec } = options;
    const hot = spec.echo.mode === 'hot' && spec.routing.protocol === 'http';
    // The router holds the fencing epoch; replication stamps mutations with it.
    const ref: { router?: Router } = {};
    const epoch = (): number => ref.router?.epoch ?? options.epoch;
    const m = spec.echo.mutations;
    const log = m.log;
    const replication = hot
      ? await ServiceReplication.open({
          service: spec.name,
          rules: {
            methods: m.methods,
            paths: m.paths,
            timeoutMs: m.timeout,
            strict: m.strict,
            order: m.order,
            ...(m.batch ? { batch: m.batch } : {}),
            ...(m.partitionBy ? { partitionBy: m.partitionBy } : {}),
          },
          consistency: spec.echo.consistency,
          epoch,
          ...(m.appliedSeq ? { appliedSeq: m.appliedSeq } : {}),
          ...(options.onEchoSyncChange ? { onEchoSyncChange: options.onEchoSyncChange } : {}),
          ...(options.mutationLogDir
            ? {
                log: {
                  dir: options.mutationLogDir,
                  maxBytes: log.maxBytes,
                  maxAgeMs: log.maxAge,
                  segmentBytes: log.segmentBytes,
                  onRotate: () => crashPoint('mutation-log-rotate'),
                },
              }
            : {}),
        })
      : undefined;
    const hooks = replication ? replicationHooks(replication, epoch) : undefined;
    // The router listens in the control process: on loopback unless the spec says otherwise. The same
    // options as a standalone `understudy router` of the service (src/router-node).
    const router = await Router.create({
      ...routerOptionsOf(spec, options.epoch, spec.routing.listen ?? `${LOOPBACK}:0`),
      ...(hooks ? { interceptor: hooks.interceptor, afterResponse: hooks.afterResponse } : {}),
    });
    ref.router = router;
    const plane = new ServiceDataPlane(
      router,
      replication,
      spec,
      options.onPrimary,
      options.addressOf,
      options.store,
    );
    plane.#routerAckMs = options.routerAckMs ?? 2000;
    if (options.store) {
      plane.#routing = { service: spec.name, hosts: { ...options.hosts } };
      try {
        await plane.#writeRouting();
      } catch (err) {
        await plane.close();
        throw err;
      }
    }
    return plane;
  }

  async #writeRouting(): Promise<void> {
    if (this.#store && this.#routing)
      await this.#store.put(ROUTING_PREFIX + this.spec.name, JSON.stringify(this.#routing));
  }

  /**
   * A planned switchover begins: holds new mutations in this process's router and tells routers in
   * other processes to hold them too (the routing record's `pause`, at the service's current `epoch`).
   * Resolves once this router's forwarded mutations are answered and every router registered under
   * `routers/<service>/` has acknowledged holding them (`holding: epoch`, written once its own forwarded
   * mutations were answered). Thrown: UNDERSTUDY_ERR_FAILOVER when a router does not acknowledge within
   * `routerAckMs` (a router that died stays registered until its lease lapses).
   */
  async pauseForSwitchover(epoch: number, reason: string, clock: Clock): Promise<void> {
    if (this.#routing) {
      this.#routing = { ...this.#routing, pause: { epoch, at: clock.now(), reason } };
      await this.#writeRouting();
    }
    await this.router.pause();
    if (this.#store) await this.#waitForRouters(this.#store, epoch, clock);
  }

  /** Resolves once every registered router holds mutations for the pause of `epoch`. */
  async #waitForRouters(store: StateStore, epoch: number, clock: Clock): Promise<void> {
    const prefix = `${ROUTER_PREFIX}${this.spec.name}/`;
    const snap = await store.snapshot(prefix);
    const routers = new Map<string, RouterRegistration | undefined>(
      snap.records.map((r) => [r.key, parseRegistration(r.value)]),
    );
    const missing = (): RouterRegistration[] =>
      [...routers.values()].filter((r): r is RouterRegistration => !!r && r.holding !== epoch);
    if (missing().length === 0) return;
    await new Promise<void>((resolve, reject) => {
      let finished = false;
      let unwatch: Unwatch | undefined;
      const finish = (err?: Error): void => {
        if (finished) return;
        finished = true;
        cancel();
        unwatch?.();
        if (err) reject(err);
        else resolve();
      };
      const cancel = clock.setTimer(() => {
        const late = missing()
          .map((r) => `${r.id} (${r.address})`)
          .join(', ');
        finish(
          new UnderstudyError(
            ErrorCode.Failover,
            `router(s) ${late} of '${this.spec.name}' did not hold mutations within ${this.#routerAckMs} ms`,
          ),
        );
      }, this.#routerAckMs);
      store
        .watch(
          prefix,
          (e) => {
            if (e.type === 'put' && e.record) routers.set(e.key, parseRegistration(e.record.value));
            else routers.delete(e.key);
            if (missing().length === 0) finish();
          },
          { fromRevision: snap.revision, onError: (err) => finish(err) },
        )
        .then(
          (u) => {
            unwatch = u;
            if (finished) u();
          },
          (err: unknown) => finish(err as Error),
        );
    });
  }

  /** Ends {@link pauseForSwitchover}: held mutations go to the serving set as it is now, here and elsewhere. */
  async resumeAfterSwitchover(): Promise<void> {
    this.router.resume();
    if (this.#routing?.pause) {
      const rest = { ...this.#routing };
      delete rest.pause;
      this.#routing = rest;
      await this.#writeRouting();
    }
  }

  /** Port of an instance that traffic goes to. */
  portOf(rec: InstanceRecord): number {
    const name = this.spec.routing.port ?? Object.keys(rec.ports)[0] ?? '';
    return rec.ports[name] ?? 0;
  }

  /** Where the router reaches `rec` (its address and routed port). */
  endpointOf(rec: InstanceRecord): { host: string; port: number } {
    return { host: this.addressOf(rec), port: this.portOf(rec) };
  }

  /** Sends all traffic to `rec`, fencing every backend of an older epoch first. */
  setPrimary(rec: InstanceRecord, epoch: number): void {
    const port = this.portOf(rec);
    this.router.switchTo({ id: rec.id, host: this.addressOf(rec), port, epoch });
    this.replication?.forgetEcho(rec.id);
    this.replication?.setPrimary({ instanceId: rec.id, host: this.addressOf(rec), port });
    this.onPrimary?.(rec, port);
  }

  /**
   * Prepares the router's way to `rec` before it serves: one connection through its host's TLS ingress,
   * closed at once (see `Router.warmUpstream`). Resolves whether it connected.
   */
  warmUpstream(rec: InstanceRecord): Promise<boolean> {
    return this.router.warmUpstream({ id: rec.id, host: this.addressOf(rec), port: this.portOf(rec) });
  }

  /**
   * Sends traffic to the serving set `recs` (least outstanding requests among them); members that left
   * drain. An empty set stops routing (requests wait briefly, then 503). The first member is what DNS
   * and external load balancers point at. Members that join ramp up over `slowStartMs` (0: at once);
   * members that stay keep their ramp.
   */
  setServing(recs: readonly InstanceRecord[], slowStartMs = 0): void {
    const before = this.router.backends[0];
    for (const r of recs) this.replication?.forgetEcho(r.id);
    this.router.setBackends(
      recs.map((r) => ({
        id: r.id,
        host: this.addressOf(r),
        port: this.portOf(r),
        epoch: r.epoch,
        slowStartMs,
      })),
    );
    const first = recs[0];
    if (first)
      this.replication?.setPrimary({
        instanceId: first.id,
        host: this.addressOf(first),
        port: this.portOf(first),
      });
    if (first && first.id !== before) this.onPrimary?.(first, this.portOf(first));
  }

  /** Mirrors a `sample` fraction of live requests to the shadows `recs` (responses discarded). */
  setShadows(recs: readonly InstanceRecord[], sample: number): void {
    this.router.setShadows(
      recs.map((r) => ({ id: r.id, host: this.addressOf(r), port: this.portOf(r) })),
      sample,
    );
  }

  /** Starts replaying mutations after `fromSeq` on an echo (hot mode). */
  addEcho(rec: InstanceRecord, fromSeq: number): void {
    this.replication?.addEcho(
      { instanceId: rec.id, host: this.addressOf(rec), port: this.portOf(rec) },
      fromSeq,
    );
  }

  /**
   * Asks a hot echo which mutation it applied last (the spec's `echo.mutations.appliedSeq`): the seq,
   * or why it is not known.
   */
  async appliedSeqOf(rec: InstanceRecord): Promise<{ seq: number } | { error: string }> {
    const probe = this.spec.echo.mutations.appliedSeq;
    if (!probe) return { error: 'the spec sets no echo.mutations.appliedSeq to ask it' };
    return askAppliedSeq(this.addressOf(rec), this.portOf(rec), probe);
  }

  /** Copies a `sample` fraction of live reads to the echoes `recs` (cache warming; responses discarded). */
  setWarmReads(recs: readonly InstanceRecord[], sample: number): void {
    this.router.setWarmReads(
      recs.map((r) => ({ id: r.id, host: this.addressOf(r), port: this.portOf(r) })),
      sample,
    );
  }

  async removeEcho(id: string): Promise<void> {
    await this.replication?.removeEcho(id);
  }

  view(): DataPlaneView {
    const stats: RouterStats = this.router.stats();
    return {
      address: `${stats.address.host}:${stats.address.port}`,
      mode: stats.mode,
      serving: stats.serving,
      epoch: this.router.epoch,
      ...(stats.http ? { requests: stats.http.requests } : {}),
      ...(this.replication
        ? { replication: { consistency: this.replication.consistency, ...this.replication.stats() } }
        : {}),
    };
  }

  async close(): Promise<void> {
    await this.replication?.close();
    await this.router.close({ graceMs: 1000 });
  }
}
