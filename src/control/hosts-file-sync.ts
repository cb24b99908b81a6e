import type { Agent, EchoFileSyncView, FileSync, ServiceFileSyncOptions } from '../agent/index.js';
import { ErrorCode, UnderstudyError } from '../errors/index.js';

/** What a {@link HostsFileSync} needs of the control plane. */
export interface HostsFileSyncDeps {
  /** The agent of a host. Thrown (UNDERSTUDY_ERR_NOT_FOUND) for a host no agent serves. */
  agentOf(host: string): Agent;
  /** The host of the service's instance with this id, or with this state directory; undefined: unknown. */
  hostOf(instance: { id?: string; stateDir?: string }): string | undefined;
  /** The host assumed for an instance control does not know (yet). */
  defaultHost: string;
  /**
   * Subscribes to the agents that take a host's place (`AgentRegistry.onAgent`: an agent back on a new
   * API address is a new client); returns the unsubscribe function. Given, the syncs are set up again
   * on the new agent as soon as it registers. @default none: only noticed at the next view read
   * (`caughtUp`, `echoes`, `waitCaughtUp`)
   */
  onAgent?(listener: (agent: Agent) => void): () => void;
}

/**
 * The file sync of one warm or cold service whose instances may be on several hosts (distributed mode,
 * docs/hosts.md): one file sync per host the service touches, on that host's agent. The primary's host
 * runs the source; an echo on the same host syncs over its loopback as before; an echo on another host
 * is served by a source the primary's agent exposes to that host (its address, the pair's key derived
 * from the cluster secret by both agents, TLS under the cluster CA) and synced by a target on its own
 * host's agent. Lag, `caughtUp` and the views are read where the source is: the primary's host. When
 * the primary moves to another host (a failover), that host becomes the source and every echo is
 * re-pointed at it (each resyncs only what differs).
 */
export class HostsFileSync implements FileSync {
  readonly #syncs = new Map<string, { agent: Agent; sync: FileSync }>();
  #primary: { host: string; dir: string } | undefined;
  readonly #echoes = new Map<string, { host: string; dir: string }>();
  #closed = false;
  #rebuilding = false;
  readonly #unsubscribe: () => void;

  readonly #options: ServiceFileSyncOptions;

  constructor(
    private readonly options: ServiceFileSyncOptions,
    private readonly deps: HostsFileSyncDeps,
  ) {
    // The primary's agent restarted and serves an echo of another host on a new port: follow it there.
    this.#options = {
      ...options,
      onSourceMoved: (id, at) => {
        const primary = this.#primary;
        const e = this.#echoes.get(id);
        if (!primary || !e || e.host === primary.host || this.#closed) return;
        void this.#on(e.host)
          .followPrimary?.({ host: primary.host, ...at })
          .catch((err: unknown) => this.options.onEvent?.(id, 'error', (err as Error).message));
      },
    };
    // Another agent serves a host this sync runs on (restarted on a new address): set up again there.
    this.#unsubscribe =
      deps.onAgent?.((agent) => {
        if (this.#syncs.get(agent.host)?.agent !== agent) this.#followAgents();
      }) ?? (() => undefined);
  }

  /** The sync on a host's agent, made on first use (again when the host's agent object changed). */
  #on(host: string): FileSync {
    const agent = this.deps.agentOf(host);
    const known = this.#syncs.get(host);
    if (known?.agent === agent) return known.sync;
    if (known) void known.sync.close().catch(() => undefined);
    const sync = agent.fileSync(this.#options);
    this.#syncs.set(host, { agent, sync });
    return sync;
  }

  /** Closes a host's sync without waiting (its host may be gone: nothing is left to wait for there). */
  #drop(host: string): void {
    const known = this.#syncs.get(host);
    this.#syncs.delete(host);
    void known?.sync.close().catch(() => undefined);
  }

  async setPrimary(stateDir: string): Promise<void> {
    if (this.#closed) return;
    const host = this.deps.hostOf({ stateDir }) ?? this.deps.defaultHost;
    const prev = this.#primary;
    this.#primary = { host, dir: stateDir };
    // The old primary's host no longer runs the source; its echoes (if any) get a fresh sync below.
    if (prev && prev.host !== host) this.#drop(prev.host);
    await this.#on(host).setPrimary(stateDir);
    for (const [id, e] of [...this.#echoes]) {
      try {
        await this.#wire(id, e);
      } catch (err) {
        this.options.onEvent?.(id, 'error', (err as Error).message);
      }
    }
  }

  /** Connects echo `id` to the current primary: on its own host's loopback, or across hosts. */
  async #wire(id: string, e: { host: string; dir: string }): Promise<void> {
    const primary = this.#primary;
    if (!primary || this.#echoes.get(id) !== e) return;
    if (e.host === primary.host) {
      await this.#on(e.host).addEcho(id, e.dir);
      return;
    }
    const source = this.#on(primary.host);
    const target = this.#on(e.host);
    if (!source.addRemoteEcho || !target.followPrimary)
      throw new UnderstudyError(
        ErrorCode.StateDir,
        `cannot sync the files of echo ${id} on host '${e.host}' from the primary on host '${primary.host}': these agents sync files on one host only`,
      );
    const at = await source.addRemoteEcho(id, e.host);
    await target.followPrimary({ host: primary.host, ...at });
    await target.addEcho(id, e.dir);
  }

  async addEcho(id: string, stateDir: string): Promise<void> {
    if (this.#closed) return;
    const host = this.deps.hostOf({ id }) ?? this.deps.defaultHost;
    const prev = this.#echoes.get(id);
    if (prev && prev.host !== host) await this.#removeFrom(id, prev);
    const e = { host, dir: stateDir };
    this.#echoes.set(id, e);
    await this.#wire(id, e);
  }

  async #removeFrom(id: string, e: { host: string; dir: string }): Promise<void> {
    const primary = this.#primary;
    // The primary's side only stops serving it: not waited for (that host may be the one lost).
    if (primary && primary.host !== e.host)
      void this.#syncs
        .get(primary.host)
        ?.sync.removeEcho(id)
        .catch(() => undefined);
    await this.#syncs.get(e.host)?.sync.removeEcho(id);
  }

  async removeEcho(id: string): Promise<void> {
    const e = this.#echoes.get(id);
    this.#echoes.delete(id);
    if (e) await this.#removeFrom(id, e);
  }

  #sourceSync(): FileSync | undefined {
    this.#followAgents();
    return this.#primary ? this.#syncs.get(this.#primary.host)?.sync : undefined;
  }

  /**
   * A host's agent was replaced (it restarted on a new address and registered again): its syncs went
   * with the old client, so the primary and every echo are set up again on the agents there now. Run
   * when the registry tells of a new agent ({@link HostsFileSyncDeps.onAgent}) and at each view read;
   * once per change (a host whose sync is already on its current agent is not touched), never after
   * {@link close}.
   */
  #followAgents(): void {
    if (this.#rebuilding || this.#closed || !this.#primary) return;
    const stale = [...this.#syncs].some(([host, { agent }]) => {
      try {
        return this.deps.agentOf(host) !== agent;
      } catch {
        return false; // no agent there now: nothing to set up until one registers
      }
    });
    if (!stale) return;
    this.#rebuilding = true;
    const { dir } = this.#primary;
    void this.setPrimary(dir)
      .catch((err: unknown) => {
        for (const id of this.#echoes.keys()) this.options.onEvent?.(id, 'error', (err as Error).message);
      })
      .finally(() => (this.#rebuilding = false));
  }

  caughtUp(id: string): boolean {
    return this.#sourceSync()?.caughtUp(id) ?? false;
  }

  async waitCaughtUp(id: string, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    // Asked where the source is now: a failover meanwhile moves it.
    for (;;) {
      const sync = this.#sourceSync();
      const left = deadline - Date.now();
      if (this.#closed || left <= 0) return false;
      if (!sync) await new Promise((r) => setTimeout(r, Math.min(100, left)));
      else if (await sync.waitCaughtUp(id, left).catch(() => false)) return true;
      else if (sync === this.#sourceSync()) return false;
    }
  }

  /** Every echo, as the primary's host sees it; an echo not wired yet is listed disconnected. */
  echoes(): EchoFileSyncView[] {
    const seen = new Map((this.#sourceSync()?.echoes() ?? []).map((v) => [v.echo, v]));
    return [...this.#echoes.keys()].map(
      (id) =>
        seen.get(id) ?? {
          echo: id,
          connected: false,
          lagSeconds: 0,
          lagBytes: 0,
          changeRateBytesPerSec: 0,
          changeRateFilesPerSec: 0,
          wireBytes: 0,
          compressionRatio: 1,
          lastAppliedSeq: 0,
          errors: 0,
          initialSync: { doneBytes: 0, totalBytes: 0 },
        },
    );
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#unsubscribe();
    const all = [...this.#syncs.values()];
    this.#syncs.clear();
    await Promise.all(all.map((s) => s.sync.close().catch(() => undefined)));
  }
}

/** What {@link copyStateBetweenHosts} copies, from where to where. */
export interface StateCopy {
  service: string;
  /** The primary's host and state directory. */
  from: { host: string; stateDir: string };
  /** The echo: its id, host and state directory (replaced by the copy). */
  to: { id: string; host: string; stateDir: string };
  /** The file-sync settings the copy runs with (priorities; nothing is excluded from a snapshot). */
  settings: ServiceFileSyncOptions['settings'];
  /** How long the copy may take before it is given up. */
  timeoutMs: number;
}

/**
 * A one-shot copy of a primary's state directory to an echo on another host (a hot echo's seed): the
 * primary's agent serves it over the cross-host file sync (the pair's key derived from the cluster
 * secret, TLS under the cluster CA), the echo's agent applies it into a fresh directory, and both end
 * once the echo has applied everything. The caller keeps the primary from changing meanwhile (the
 * router paused), so the copy is the state at a known position of the mutation log. Thrown:
 * UNDERSTUDY_ERR_STATE_DIR when the agents cannot copy between hosts or the copy does not finish.
 */
export async function copyStateBetweenHosts(
  agentOf: (host: string) => Agent,
  copy: StateCopy,
): Promise<void> {
  const { from, to } = copy;
  const failed = (why: string) =>
    new UnderstudyError(
      ErrorCode.StateDir,
      `cannot copy the state directory ${from.stateDir} of host '${from.host}' to ${to.stateDir} on '${to.host}': ${why}`,
      { details: { from, to } },
    );
  const sourceAgent = agentOf(from.host);
  const targetAgent = agentOf(to.host);
  const options: ServiceFileSyncOptions = {
    service: copy.service,
    settings: { ...copy.settings, mode: 'continuous', exclude: [] },
  };
  const source = sourceAgent.fileSync(options);
  const target = targetAgent.fileSync(options);
  try {
    if (!source.addRemoteEcho || !target.followPrimary)
      throw failed('these agents copy state on one host only');
    await targetAgent.removeState(to.stateDir);
    await targetAgent.prepareSyncTarget(to.stateDir);
    await source.setPrimary(from.stateDir);
    const at = await source.addRemoteEcho(to.id, to.host);
    await target.followPrimary({ host: from.host, ...at });
    await target.addEcho(to.id, to.stateDir);
    if (!(await source.waitCaughtUp(to.id, copy.timeoutMs)))
      throw failed(`not complete after ${Math.round(copy.timeoutMs / 1000)} s`);
  } finally {
    await target.close().catch(() => undefined);
    await source.close().catch(() => undefined);
  }
}
