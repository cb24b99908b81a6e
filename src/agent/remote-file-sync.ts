import { randomBytes } from 'node:crypto';
import type { FileSync } from './agent.js';
import type { AgentClient } from './agent-client.js';
import type { SyncExposeReply, SyncViewReply } from './agent-wire.js';
import type { EchoFileSyncView, ServiceFileSyncOptions } from './service-file-sync.js';

/**
 * A {@link FileSync} whose work runs on the agent's host (the source and targets are processes of the
 * agent, over that host's loopback): every call goes over the agent API. The synchronous views
 * (`caughtUp`, `echoes`) answer from the state last polled (every `pollMs`); the poll also tells the
 * agent the primary's utilisation. After the agent restarts ({@link reestablish}) the sync is created
 * again with the same key, primary and echoes.
 */
export class RemoteFileSync implements FileSync {
  readonly id = `sync-${randomBytes(8).toString('hex')}`;
  readonly #key: Buffer;
  #primaryDir: string | undefined;
  readonly #echoes = new Map<string, string>();
  /** Echoes of other hosts this host's primary serves (echo → host). */
  readonly #remoteEchoes = new Map<string, string>();
  /** The primary of another host this host's echoes follow. */
  #follow: { host: string; address: string; port: number } | undefined;
  #view: SyncViewReply = { echoes: [], caughtUp: {} };
  #queue: Promise<unknown>;
  #closed = false;
  readonly #poll: NodeJS.Timeout;

  constructor(
    private readonly client: AgentClient,
    private readonly clientId: string,
    private readonly options: ServiceFileSyncOptions,
    pollMs: number,
    private readonly onClosed: (sync: RemoteFileSync) => void,
  ) {
    this.#key = options.key ?? randomBytes(32);
    this.#queue = this.#create().catch(() => undefined);
    this.#poll = setInterval(() => void this.#refresh(), pollMs);
    this.#poll.unref();
  }

  /** Runs `fn` after every earlier call, in order; a failure is the caller's, not the next call's. */
  #then<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.#queue.then(fn);
    this.#queue = next.catch(() => undefined);
    return next;
  }

  #create(): Promise<unknown> {
    return this.client.call('syncCreate', {
      client: this.clientId,
      syncId: this.id,
      service: this.options.service,
      settings: this.options.settings,
      key: this.#key.toString('base64'),
    });
  }

  async #refresh(): Promise<void> {
    if (this.#closed) return;
    const u = this.options.utilisation?.();
    try {
      this.#view = await this.client.call<'syncView', SyncViewReply>('syncView', {
        syncId: this.id,
        ...(u !== undefined && Number.isFinite(u) ? { utilisation: Math.min(1, Math.max(0, u)) } : {}),
      });
    } catch {
      // unreachable for now: the last view stands, the stream's reconnect re-establishes the sync
    }
  }

  /** Creates the sync again on a restarted agent: same key, primary and echoes. */
  reestablish(): Promise<void> {
    return this.#then(async () => {
      if (this.#closed) return;
      await this.#create();
      if (this.#primaryDir)
        await this.client.call('syncSetPrimary', { syncId: this.id, stateDir: this.#primaryDir });
      else if (this.#follow)
        await this.client.call('syncFollow', {
          syncId: this.id,
          sourceHost: this.#follow.host,
          address: this.#follow.address,
          port: this.#follow.port,
        });
      for (const [echoId, peerHost] of this.#remoteEchoes) {
        const at = await this.client.call<'syncExposeEcho', SyncExposeReply>('syncExposeEcho', {
          syncId: this.id,
          echoId,
          peerHost,
        });
        this.options.onSourceMoved?.(echoId, at);
      }
      for (const [echoId, stateDir] of this.#echoes)
        await this.client.call('syncAddEcho', { syncId: this.id, echoId, stateDir });
    });
  }

  /** An event the agent reported for this sync. */
  event(echoId: string, kind: 'error' | 'security', message: string): void {
    this.options.onEvent?.(echoId, kind, message);
  }

  setPrimary(stateDir: string): Promise<void> {
    this.#primaryDir = stateDir;
    this.#follow = undefined;
    return this.#then(async () => {
      await this.client.call('syncSetPrimary', { syncId: this.id, stateDir });
    });
  }

  addEcho(id: string, stateDir: string): Promise<void> {
    this.#remoteEchoes.delete(id);
    this.#echoes.set(id, stateDir);
    return this.#then(async () => {
      await this.client.call('syncAddEcho', { syncId: this.id, echoId: id, stateDir });
      await this.#refresh();
    });
  }

  /**
   * Cross-host: the agent serves echo `id` of host `peerHost` from this host's primary, on its host
   * address under the pair's key (derived there from the cluster secret) and TLS. Where to connect.
   */
  addRemoteEcho(id: string, peerHost: string): Promise<SyncExposeReply> {
    this.#echoes.delete(id);
    this.#remoteEchoes.set(id, peerHost);
    return this.#then(async () => {
      const r = await this.client.call<'syncExposeEcho', SyncExposeReply>('syncExposeEcho', {
        syncId: this.id,
        echoId: id,
        peerHost,
      });
      await this.#refresh();
      return r;
    });
  }

  /** Cross-host: this host's echoes follow the primary of another host (see {@link addRemoteEcho}). */
  followPrimary(source: { host: string; address: string; port: number }): Promise<void> {
    this.#primaryDir = undefined;
    this.#remoteEchoes.clear();
    this.#follow = { ...source };
    return this.#then(async () => {
      await this.client.call('syncFollow', {
        syncId: this.id,
        sourceHost: source.host,
        address: source.address,
        port: source.port,
      });
    });
  }

  removeEcho(id: string): Promise<void> {
    this.#echoes.delete(id);
    this.#remoteEchoes.delete(id);
    return this.#then(async () => {
      await this.client.call('syncRemoveEcho', { syncId: this.id, echoId: id });
      await this.#refresh();
    });
  }

  caughtUp(id: string): boolean {
    return this.#view.caughtUp[id] ?? false;
  }

  async waitCaughtUp(id: string, timeoutMs: number): Promise<boolean> {
    const r = await this.#then(() =>
      this.client.call<'syncWaitCaughtUp', { caughtUp: boolean }>(
        'syncWaitCaughtUp',
        { syncId: this.id, echoId: id, timeoutMs },
        timeoutMs,
      ),
    );
    await this.#refresh();
    return r.caughtUp;
  }

  echoes(): EchoFileSyncView[] {
    return this.#view.echoes;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    clearInterval(this.#poll);
    await this.#then(async () => {
      this.#closed = true;
      await this.client.call('syncClose', { syncId: this.id }).catch(() => undefined);
    });
    this.onClosed(this);
  }
}
