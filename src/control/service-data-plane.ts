import { LOOPBACK } from '../agent/index.js';
import { parseListen, type ServiceSpec } from '../config/index.js';
import { ServiceReplication, replicationHooks, type EchoReplicationStats } from '../replication/index.js';
import { Router, type RouterStats } from '../router/index.js';
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
  private constructor(
    readonly router: Router,
    readonly replication: ServiceReplication | undefined,
    private readonly spec: ServiceSpec,
    private readonly onPrimary: ((rec: InstanceRecord, port: number) => void) | undefined,
    private readonly addressOf: (rec: InstanceRecord) => string,
  ) {}

  static async create(options: ServiceDataPlaneOptions): Promise<ServiceDataPlane> {
    const { spec } = options;
    // The router listens in the control process: on loopback unless the spec says otherwise.
    const { host, port } = parseListen(spec.routing.listen ?? `${LOOPBACK}:0`);
    const hot = spec.echo.mode === 'hot' && spec.routing.protocol === 'http';
    // The router holds the fencing epoch; replication stamps mutations with it.
    const ref: { router?: Router } = {};
    const epoch = (): number => ref.router?.epoch ?? options.epoch;
    const m = spec.echo.mutations;
    const replication = hot
      ? new ServiceReplication({
          service: spec.name,
          rules: {
            methods: m.methods,
            paths: m.paths,
            timeoutMs: m.timeout,
            strict: m.strict,
            order: m.order,
            ...(m.partitionBy ? { partitionBy: m.partitionBy } : {}),
          },
          consistency: spec.echo.consistency,
          epoch,
          ...(options.onEchoSyncChange ? { onEchoSyncChange: options.onEchoSyncChange } : {}),
        })
      : undefined;
    const hooks = replication ? replicationHooks(replication, epoch) : undefined;
    const router = await Router.create({
      service: spec.name,
      mode: spec.routing.protocol,
      host,
      port,
      epoch: options.epoch,
      mutatingMethods: m.methods,
      retryPutDelete: m.idempotent.includes('PUT') && m.idempotent.includes('DELETE'),
      interceptPathPrefixes: m.paths,
      ...(hooks ? { interceptor: hooks.interceptor, afterResponse: hooks.afterResponse } : {}),
    });
    ref.router = router;
    return new ServiceDataPlane(router, replication, spec, options.onPrimary, options.addressOf);
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
    this.replication?.setPrimary({ instanceId: rec.id, host: this.addressOf(rec), port });
    this.onPrimary?.(rec, port);
  }

  /**
   * Sends traffic to the serving set `recs` (least outstanding requests among them); members that left
   * drain. An empty set stops routing (requests wait briefly, then 503). The first member is what DNS
   * and external load balancers point at. Members that join ramp up over `slowStartMs` (0: at once);
   * members that stay keep their ramp.
   */
  setServing(recs: readonly InstanceRecord[], slowStartMs = 0): void {
    const before = this.router.backends[0];
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
