import { randomBytes } from 'node:crypto';
import type { ProbeResult, ProbeTarget } from '../health/index.js';
import type {
  CloseOptions,
  InstanceExit,
  InstanceHandle,
  InstanceLaunch,
  InstanceFootprint,
  InstanceStats,
  LimitsSupport,
  ResourceLimits,
  StopOptions,
  HookRequest,
  HookResult,
} from '../runtime/index.js';
import type { TreeDifference } from '../sync/index.js';
import type {
  Agent,
  FileSync,
  HostFacts,
  InstanceHook,
  InstanceWatch,
  InstanceWatchHandlers,
} from './agent.js';
import { AgentClient } from './agent-client.js';
import type { TlsIdentity } from './cluster-ca.js';
import type { AgentInfo, AgentStreamLine } from './agent-wire.js';
import { RemoteFileSync } from './remote-file-sync.js';
import type { ServiceFileSyncOptions } from './service-file-sync.js';

/** Options of {@link RemoteAgent}. */
export interface RemoteAgentOptions {
  /** Host name the agent serves (`InstanceRecord.host`). */
  host: string;
  /** The address the host's instances are reached at (its host record's `address`). */
  address: string;
  /** Base URL of the agent API, e.g. `http://10.0.0.5:7700`. */
  url: string;
  /** The cluster secret (the contents of `cluster.key`). */
  secret: string;
  /** TLS to the agent API (see `AgentClientOptions.tls`). @default none: plain HTTP */
  tls?: TlsIdentity;
  /** The agent's runtime driver, as its host record says. @default 'process' */
  runtimeName?: string;
  /** Time allowed for one call beyond the time the operation itself is given, ms. @default 10000 */
  requestTimeoutMs?: number;
  /** Pause before reconnecting the event stream after it broke, ms. @default 250 */
  reconnectMs?: number;
  /** A stream that brings no line (the agent pings every 2 s) for this long is reopened, ms. @default 8000 */
  streamIdleMs?: number;
  /** How often a file sync's state is read for `caughtUp()` and `echoes()`, ms. @default 500 */
  syncPollMs?: number;
  /**
   * Instances to follow from the start (handed over from an earlier RemoteAgent of the host): they are
   * re-read on the first connect, and their exits are reported. @default none
   */
  follow?: InstanceHandle[];
}

interface WatchEntry {
  watch: InstanceWatch;
  handlers: InstanceWatchHandlers;
  /** The agent boot it was registered with ('' while not registered). */
  boot: string;
}

/**
 * An {@link Agent} on another process (usually another host), reached over its authenticated API
 * (`AgentServer`). Every call is an HTTP request with a timeout; when the agent is down a call rejects
 * with UNDERSTUDY_ERR_AGENT_UNREACHABLE naming the host and address.
 *
 * Exits and watch verdicts arrive on one event stream, reopened whenever it breaks: it resumes after
 * the last event seen. After a gap (events dropped, or the agent restarted) every instance this client
 * started or adopted is read again with `instance()`, and an exit that happened meanwhile is reported
 * then; after an agent restart, watches and file syncs are set up again.
 *
 * Limits: state directories are the agent's (paths on its host): `snapshotState` from another host's
 * instance and `compareState` across hosts are refused by the agent (UNDERSTUDY_ERR_STATE_DIR), and a
 * file sync runs between directories of the one agent's host. Moving state between hosts is for a
 * later issue (a transfer agent to agent).
 */
export class RemoteAgent implements Agent {
  readonly host: string;
  readonly address: string;
  #runtimeName: string;
  /** Identifies this client to the agent (its watches and syncs live as long as its stream). */
  readonly clientId = `c-${randomBytes(8).toString('hex')}`;
  readonly #client: AgentClient;
  readonly #o: Required<Pick<RemoteAgentOptions, 'reconnectMs' | 'streamIdleMs' | 'syncPollMs'>>;
  readonly #exitListeners = new Set<(handle: InstanceHandle, exit: InstanceExit) => void>();
  /** Instances started or adopted through this client, not yet seen exiting. */
  readonly #known = new Map<string, InstanceHandle>();
  readonly #watches = new Map<string, WatchEntry>();
  readonly #syncs = new Map<string, RemoteFileSync>();
  /** Exits seen of instances not (yet) known: `id:pid` → exit. */
  readonly #early = new Map<string, InstanceExit>();
  readonly #abort = new AbortController();
  #boot = '';
  #seq = 0;
  #connected = false;
  #closed = false;
  readonly #loop: Promise<void>;

  constructor(options: RemoteAgentOptions) {
    this.host = options.host;
    this.address = options.address;
    this.#runtimeName = options.runtimeName ?? 'process';
    this.#client = new AgentClient({
      host: options.host,
      url: options.url,
      secret: options.secret,
      ...(options.tls ? { tls: options.tls } : {}),
      ...(options.requestTimeoutMs === undefined ? {} : { requestTimeoutMs: options.requestTimeoutMs }),
    });
    this.#o = {
      reconnectMs: options.reconnectMs ?? 250,
      streamIdleMs: options.streamIdleMs ?? 8000,
      syncPollMs: options.syncPollMs ?? 500,
    };
    for (const h of options.follow ?? []) this.#known.set(h.instanceId, h);
    this.#loop = this.#streamLoop();
  }

  /** The instances this client follows (started or adopted through it, not seen exiting). */
  followed(): InstanceHandle[] {
    return [...this.#known.values()];
  }

  get runtimeName(): string {
    return this.#runtimeName;
  }

  /** Whether the event stream is connected now. */
  get connected(): boolean {
    return this.#connected;
  }

  /** Reads the agent's identity (and checks that it is reachable and accepts the secret). */
  async info(): Promise<AgentInfo> {
    const info = await this.#client.call<'info', AgentInfo>('info', {});
    this.#runtimeName = info.runtimeName;
    return info;
  }

  async #streamLoop(): Promise<void> {
    const signal = this.#abort.signal;
    while (!this.#closed) {
      try {
        await this.#client.stream(
          { after: this.#seq, boot: this.#boot, client: this.clientId },
          this.#o.streamIdleMs,
          signal,
          (line) => this.#onLine(line),
        );
      } catch {
        // unreachable or refused: tried again below
      }
      this.#connected = false;
      if (this.#closed) return;
      await new Promise((r) => setTimeout(r, this.#o.reconnectMs).unref());
    }
  }

  #onLine(line: AgentStreamLine): void {
    switch (line.type) {
      case 'ping':
        return;
      case 'hello': {
        const restarted = this.#boot !== '' && line.boot !== this.#boot;
        // Instances handed over are read again on the first connect (they may have exited meanwhile).
        const handedOver = this.#boot === '' && this.#known.size > 0;
        this.#boot = line.boot;
        // A restarted agent numbers its events from 1 again (and sends every one it has).
        if (restarted) this.#seq = 0;
        this.#connected = true;
        void this.#resync(restarted || line.gap || handedOver);
        return;
      }
      case 'exit':
        this.#seq = Math.max(this.#seq, line.seq);
        this.#exited(line.handle, line.exit);
        return;
      case 'health':
      case 'hang': {
        this.#seq = Math.max(this.#seq, line.seq);
        const w = this.#watches.get(line.watchId);
        if (!w) return;
        if (line.type === 'health') w.handlers.onHealth(line.verdict);
        else w.handlers.onHang(line.verdict);
        return;
      }
      case 'sync':
        this.#seq = Math.max(this.#seq, line.seq);
        this.#syncs.get(line.syncId)?.event(line.echoId, line.kind, line.message);
        return;
    }
  }

  /** After a (re)connect: watches and syncs the agent lacks are set up; after a gap, instances re-read. */
  async #resync(reread: boolean): Promise<void> {
    const boot = this.#boot;
    for (const [watchId, w] of this.#watches) if (w.boot !== boot) await this.#register(watchId, w);
    if (reread) {
      for (const s of this.#syncs.values()) await s.reestablish().catch(() => undefined);
      for (const [id, known] of [...this.#known]) {
        const now = await this.instance(id).catch(() => 'unreachable' as const);
        if (now === 'unreachable') continue;
        if (!now || now.pid !== known.pid)
          this.#exited(known, known.exit ?? { code: null, signal: null, at: Date.now() });
        else if (now.exit) this.#exited(now, now.exit);
      }
    }
  }

  #exited(handle: InstanceHandle, exit: InstanceExit): void {
    const known = this.#known.get(handle.instanceId);
    if (!known || known.pid !== handle.pid) {
      // An exit can overtake the reply of the start that launched it: kept until the start returns.
      this.#early.set(`${handle.instanceId}:${handle.pid}`, exit);
      if (this.#early.size > 256) this.#early.delete(this.#early.keys().next().value!);
      return;
    }
    this.#known.delete(handle.instanceId);
    const final = { ...known, exit };
    for (const l of this.#exitListeners) l(final, exit);
  }

  #track(handle: InstanceHandle): InstanceHandle {
    if (handle.exit) return handle;
    this.#known.set(handle.instanceId, handle);
    const key = `${handle.instanceId}:${handle.pid}`;
    const early = this.#early.get(key);
    if (early) {
      this.#early.delete(key);
      queueMicrotask(() => this.#exited(handle, early));
    }
    return handle;
  }

  async start(launch: InstanceLaunch): Promise<InstanceHandle> {
    return this.#track(await this.#client.call<'start', InstanceHandle>('start', { launch }));
  }

  stop(instanceId: string, options?: StopOptions): Promise<InstanceExit> {
    return this.#client.call(
      'stop',
      { instanceId, ...(options?.graceMs === undefined ? {} : { graceMs: options.graceMs }) },
      (options?.graceMs ?? 5000) + 1000,
    );
  }

  async kill(instanceId: string, signal: NodeJS.Signals): Promise<void> {
    await this.#client.call('kill', { instanceId, signal });
  }

  async fence(instanceId: string): Promise<void> {
    await this.#client.call('fence', { instanceId });
  }

  async adopt(handle: Omit<InstanceHandle, 'exit'>): Promise<boolean> {
    const { adopted } = await this.#client.call<'adopt', { adopted: boolean }>('adopt', { handle });
    if (adopted) this.#track((await this.instance(handle.instanceId)) ?? { ...handle });
    return adopted;
  }

  async instance(instanceId: string): Promise<InstanceHandle | undefined> {
    const r = await this.#client.call<'instance', { handle: InstanceHandle | null }>('instance', {
      instanceId,
    });
    return r.handle ?? undefined;
  }

  async setResources(instanceId: string, limits: ResourceLimits): Promise<void> {
    await this.#client.call('setResources', { instanceId, limits });
  }

  limitsSupport(): Promise<LimitsSupport> {
    return this.#client.call('limitsSupport', {});
  }

  async stats(instanceId: string): Promise<InstanceStats | undefined> {
    const r = await this.#client.call<'stats', { stats: InstanceStats | null }>('stats', { instanceId });
    return r.stats ?? undefined;
  }

  async footprint(instanceId: string): Promise<InstanceFootprint | undefined> {
    const r = await this.#client.call<'footprint', { footprint: InstanceFootprint | null }>('footprint', {
      instanceId,
    });
    return r.footprint ?? undefined;
  }

  onExit(listener: (handle: InstanceHandle, exit: InstanceExit) => void): () => void {
    this.#exitListeners.add(listener);
    return () => this.#exitListeners.delete(listener);
  }

  async allocatePort(): Promise<number> {
    return (await this.#client.call<'allocatePort', { port: number }>('allocatePort', {})).port;
  }

  async probe(target: ProbeTarget, timeoutMs: number): Promise<ProbeResult> {
    try {
      return await this.#client.call('probe', { target, timeoutMs }, timeoutMs);
    } catch (err) {
      // A probe never throws: an agent that cannot be asked is a failed probe.
      return { ok: false, detail: (err as Error).message, latencyMs: 0 };
    }
  }

  watch(watch: InstanceWatch, handlers: InstanceWatchHandlers, signal: AbortSignal): void {
    if (signal.aborted) return;
    const watchId = `w-${randomBytes(8).toString('hex')}`;
    const entry: WatchEntry = { watch, handlers, boot: '' };
    this.#watches.set(watchId, entry);
    signal.addEventListener(
      'abort',
      () => {
        this.#watches.delete(watchId);
        if (entry.boot !== '') void this.#client.call('unwatch', { watchId }).catch(() => undefined);
      },
      { once: true },
    );
    if (this.#connected) void this.#register(watchId, entry);
  }

  async #register(watchId: string, entry: WatchEntry): Promise<void> {
    const boot = this.#boot;
    try {
      await this.#client.call('watch', { client: this.clientId, watchId, watch: entry.watch });
      if (this.#watches.get(watchId) === entry) entry.boot = boot;
      else await this.#client.call('unwatch', { watchId });
    } catch {
      // registered on the next (re)connect
    }
  }

  async runHook(instanceId: string, hook: InstanceHook, timeoutMs: number): Promise<number | undefined> {
    const r = await this.#client.call<'runHook', { status: number | null }>(
      'runHook',
      { instanceId, hook, timeoutMs },
      timeoutMs,
    );
    return r.status ?? undefined;
  }

  async runExternalHook(request: HookRequest): Promise<HookResult> {
    // The agent kills the hook at its timeout; the call waits a little longer for that answer.
    return this.#client.call<'runExternalHook', HookResult>(
      'runExternalHook',
      { request },
      request.timeoutMs + 2000,
    );
  }

  async snapshotState(
    source: { host: string; stateDir: string } | undefined,
    targetDir: string,
  ): Promise<void> {
    // Big directories take their time: a snapshot gets a minute beyond the request timeout.
    await this.#client.call('snapshotState', { ...(source ? { source } : {}), targetDir }, 60_000);
  }

  async prepareSyncTarget(stateDir: string): Promise<void> {
    await this.#client.call('prepareSyncTarget', { stateDir });
  }

  async removeState(stateDir: string): Promise<void> {
    await this.#client.call('removeState', { stateDir }, 60_000);
  }

  async compareState(aDir: string, bDir: string): Promise<TreeDifference[]> {
    const r = await this.#client.call<'compareState', { differences: TreeDifference[] }>(
      'compareState',
      { aDir, bDir },
      60_000,
    );
    return r.differences;
  }

  fileSync(options: ServiceFileSyncOptions): FileSync {
    const sync = new RemoteFileSync(this.#client, this.clientId, options, this.#o.syncPollMs, (s) =>
      this.#syncs.delete(s.id),
    );
    this.#syncs.set(sync.id, sync);
    return sync;
  }

  hostFacts(): Promise<HostFacts> {
    return this.#client.call('hostFacts', {});
  }

  /**
   * Without `leaveRunning`: the agent stops every instance (as `understudy down` does). With it: only
   * this client goes (stream, syncs, connections); the agent keeps its instances running.
   */
  async close(options?: CloseOptions): Promise<void> {
    if (this.#closed) return;
    let failure: unknown;
    if (!options?.leaveRunning) {
      try {
        await this.#client.call(
          'close',
          { ...(options?.graceMs === undefined ? {} : { graceMs: options.graceMs }) },
          (options?.graceMs ?? 5000) + 1000,
        );
      } catch (err) {
        failure = err; // reported after this client is cleaned up
      }
    }
    this.#closed = true;
    for (const s of [...this.#syncs.values()]) await s.close().catch(() => undefined);
    this.#abort.abort();
    await this.#loop;
    await this.#client.close();
    if (failure !== undefined) throw failure;
  }
}
