import type { InstanceHandle } from '../runtime/index.js';
import { AgentRegistry } from './agent.js';
import type { TlsIdentity } from './cluster-ca.js';
import { HOSTS_PREFIX, parseHostRecord, type HostRecord } from './host-record.js';
import { RemoteAgent, type RemoteAgentOptions } from './remote-agent.js';

/**
 * What {@link HostAgentRegistry} reads of the store: the `snapshot` and `watch` of `StateStore`
 * (src/store), named here by shape so that the agent module does not depend on the store module.
 */
export interface HostRecordSource {
  snapshot(prefix: string): Promise<{ records: { key: string; value: string }[]; revision: number }>;
  watch(
    prefix: string,
    listener: (event: { type: 'put' | 'delete'; key: string; record?: { value: string } }) => void,
    options?: { fromRevision?: number; signal?: AbortSignal; onError?: (error: Error) => void },
  ): Promise<() => void>;
}

/** Options of {@link HostAgentRegistry.open}. */
export interface HostAgentRegistryOptions {
  /** The store holding `hosts/*` (a `StateStore`). */
  store: HostRecordSource;
  /** The cluster secret (contents of `cluster.key`). */
  secret: string;
  /**
   * This process's TLS identity (a leaf of the cluster CA): every agent is then reached over HTTPS,
   * its certificate checked against the CA and its address; a host advertising `http://` is refused.
   * @default none: plain HTTP
   */
  tls?: TlsIdentity;
  /** Options of each {@link RemoteAgent} (timeouts, reconnect). @default RemoteAgent's defaults */
  remote?: Omit<RemoteAgentOptions, 'host' | 'address' | 'url' | 'secret' | 'runtimeName' | 'tls'>;
  /**
   * Called when a host joins or its record changes (`up`: also a new API address, or a planned
   * restart's mark) or its record goes (`down`: its lease lapsed or it stopped).
   */
  onChange?: (change: 'up' | 'down', host: string, record?: HostRecord) => void;
  /** Called when the watch of `hosts/` ends abnormally (the registry then no longer follows the store). */
  onError?: (error: Error) => void;
}

/**
 * The agents of distributed mode, found in the store: one {@link RemoteAgent} per `hosts/<name>` record
 * (list, then watch from the revision of the list, so nothing is missed). A host whose record goes
 * (its lease lapsed: the agent stopped heartbeating) leaves the registry; a new or moved one (a new API
 * address after a restart) gets a new RemoteAgent. Host records that do not parse are ignored.
 */
export class HostAgentRegistry extends AgentRegistry {
  readonly #records = new Map<string, HostRecord>();
  /** Instances followed on hosts that went away: handed to their next RemoteAgent. */
  readonly #followed = new Map<string, InstanceHandle[]>();
  #unwatch: () => void = () => undefined;
  #closed = false;
  readonly #listeners = new Set<(change: 'up' | 'down', host: string, record?: HostRecord) => void>();

  private constructor(private readonly options: HostAgentRegistryOptions) {
    super([], { allowEmpty: true });
  }

  /** Reads `hosts/*` and follows it. */
  static async open(options: HostAgentRegistryOptions): Promise<HostAgentRegistry> {
    const registry = new HostAgentRegistry(options);
    const snap = await options.store.snapshot(HOSTS_PREFIX);
    for (const r of snap.records) registry.#put(r.value);
    registry.#unwatch = await options.store.watch(
      HOSTS_PREFIX,
      (e) => {
        if (e.type === 'put' && e.record) registry.#put(e.record.value);
        else if (e.type === 'delete') registry.#gone(e.key.slice(HOSTS_PREFIX.length));
      },
      { fromRevision: snap.revision, ...(options.onError ? { onError: options.onError } : {}) },
    );
    return registry;
  }

  /**
   * Follows hosts joining (`up`, also for a record that moved or changed) and leaving (`down`: the lease lapsed or
   * the agent stopped), besides `options.onChange`. Returns an unsubscribe function.
   */
  onHostChange(listener: (change: 'up' | 'down', host: string, record?: HostRecord) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #emit(change: 'up' | 'down', host: string, record?: HostRecord): void {
    this.options.onChange?.(change, host, record);
    for (const l of this.#listeners) l(change, host, record);
  }

  /** The host records the registry follows, by host. */
  records(): HostRecord[] {
    return [...this.#records.values()];
  }

  #put(value: string): void {
    if (this.#closed) return;
    const rec = parseHostRecord(value);
    if (!rec) return;
    const before = this.#records.get(rec.host);
    this.#records.set(rec.host, rec);
    if (
      before &&
      before.url === rec.url &&
      before.address === rec.address &&
      before.ingress === rec.ingress &&
      this.has(rec.host)
    ) {
      // The same agent, its record changed (a planned restart's mark): listeners are told, the client stays.
      if (JSON.stringify(before) !== JSON.stringify(rec)) this.#emit('up', rec.host, rec);
      return;
    }
    const old = this.delete(rec.host) as RemoteAgent | undefined;
    void old?.close({ leaveRunning: true });
    // The instances the previous client followed are followed on: an exit meanwhile is not lost.
    const follow = old?.followed() ?? this.#followed.get(rec.host) ?? [];
    this.#followed.delete(rec.host);
    this.set(
      new RemoteAgent({
        ...this.options.remote,
        follow,
        host: rec.host,
        address: rec.address,
        url: rec.url,
        ingress: rec.ingress === true,
        secret: this.options.secret,
        ...(this.options.tls ? { tls: this.options.tls } : {}),
        runtimeName: rec.runtime,
      }),
    );
    this.#emit('up', rec.host, rec);
  }

  #gone(host: string): void {
    this.#records.delete(host);
    const agent = this.delete(host) as RemoteAgent | undefined;
    if (!agent) return;
    this.#followed.set(host, agent.followed());
    void agent.close({ leaveRunning: true });
    this.#emit('down', host);
  }

  /** Stops following the store and closes every RemoteAgent (the agents keep their instances). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#unwatch();
    await Promise.all(this.all().map((a) => a.close({ leaveRunning: true })));
    for (const a of this.all()) this.delete(a.host);
  }
}
