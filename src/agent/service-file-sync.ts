import { randomBytes } from 'node:crypto';
import { ErrorCode, UnderstudyError } from '../errors/index.js';
import { SyncSource, SyncTarget, type SyncStats, type SyncTlsOptions } from '../sync/index.js';

/** File-sync settings of a service (the spec's `echo.sync`, resolved). */
export interface FileSyncSettings {
  mode: 'continuous' | 'relaxed';
  intervalMs: number;
  bytesThreshold: number;
  /** Bytes per second; 0 for no cap. */
  bandwidthLimit: number;
  priorities: { name: string; patterns: string[] }[];
  exclude: string[];
}

/** Options of {@link ServiceFileSync}. */
export interface ServiceFileSyncOptions {
  service: string;
  settings: FileSyncSettings;
  /** The primary's utilisation 0..1: relaxed syncs come sooner as it rises (seed 000). */
  utilisation?: () => number;
  /** Per-service sync key (session keys are derived from it). @default 32 random bytes */
  key?: Buffer;
  /** Called when an echo's sync reports an error or a security event. */
  onEvent?: (echoId: string, kind: 'error' | 'security', message: string) => void;
  /**
   * Cross-host, on the primary's side: the source serving echo `echoId` of another host listens
   * elsewhere now (its agent restarted and the sync was set up again); that host must follow it there.
   */
  onSourceMoved?: (echoId: string, at: { address: string; port: number }) => void;
}

/**
 * Where the source for the echoes of one other host listens (cross-host sync): the host's own address,
 * the pair's key (derived from the cluster secret by the agent, {@link syncPairKey}) and TLS under the
 * cluster CA when the cluster has one.
 */
export interface SyncListen {
  /** The address to listen on (this host's address). */
  host: string;
  /** The key of this pair of hosts for this service (32 bytes). Never logged. */
  key: Buffer;
  /** Mutual TLS under the cluster CA. @default none: plain TCP (the frames are still encrypted) */
  tls?: SyncTlsOptions;
}

/** The primary on another host whose state this host's echoes follow (cross-host sync). */
export interface RemoteSyncPrimary {
  /** The primary host's address. */
  host: string;
  /** The port of the source the primary's host exposes to this host. */
  port: number;
  /** The key of this pair of hosts for this service (32 bytes). Never logged. */
  key: Buffer;
  /** Mutual TLS under the cluster CA (the primary's certificate must name `host`). @default none */
  tls?: SyncTlsOptions;
}

/** Sync state of one echo, for status and the predictors (change rate). */
export interface EchoFileSyncView {
  echo: string;
  connected: boolean;
  lagSeconds: number;
  lagBytes: number;
  changeRateBytesPerSec: number;
  changeRateFilesPerSec: number;
  wireBytes: number;
  compressionRatio: number;
  lastAppliedSeq: number;
  errors: number;
  /**
   * The initial full copy while it runs: bytes applied on the echo (per batch), bytes sent (per data
   * frame) and files applied; null once done.
   */
  initialSync: {
    doneBytes: number;
    totalBytes: number;
    sentBytes?: number;
    doneFiles?: number;
    totalFiles?: number;
  } | null;
}

/** The source this host runs for the echoes of one other host. */
interface Exposed {
  listen: SyncListen;
  source: SyncSource | undefined;
  /** Kept when the source is made again (a new primary directory): the other host's echoes reconnect. */
  port: number;
  echoes: Set<string>;
}

/**
 * The file-state sync of one service on this host (seed 000's state synchronisation agent): a
 * {@link SyncSource} on the primary's state directory and a {@link SyncTarget} for each warm or cold
 * echo, over loopback TCP under a per-service key (handshake with key confirmation, then frames
 * encrypted with AES-256-GCM). On promotion the source moves to the new
 * primary and every echo is re-pointed at it (it resyncs only what differs).
 *
 * Across hosts: the primary's host also runs one source per other host that holds echoes
 * ({@link exposeTo}: on this host's address, under that pair's key, TLS under the cluster CA), and the
 * echoes' host runs its targets against it ({@link followRemote}). Lag is read on the primary's side.
 */
export class ServiceFileSync {
  readonly #key: Buffer;
  #source: SyncSource | undefined;
  #primaryDir: string | undefined;
  /** Sources for echoes on other hosts, by host name. */
  readonly #exposed = new Map<string, Exposed>();
  /** The primary on another host this host's echoes follow, while the primary is not here. */
  #remote: RemoteSyncPrimary | undefined;
  /** Every echo, with its target once a primary (source) exists. */
  readonly #targets = new Map<string, { target: SyncTarget | undefined; dir: string }>();
  #closed = false;

  constructor(private readonly options: ServiceFileSyncOptions) {
    this.#key = options.key ?? randomBytes(32);
  }

  #createSource(dir: string, key: Buffer, listen?: { host: string; port: number; tls?: SyncTlsOptions }) {
    const s = this.options.settings;
    return SyncSource.create({
      dir,
      key,
      mode: s.mode,
      intervalMs: s.intervalMs,
      bytesThreshold: s.bytesThreshold,
      bandwidthBytesPerSec: s.bandwidthLimit > 0 ? s.bandwidthLimit : null,
      priorities: s.priorities,
      ignore: s.exclude,
      ...(listen ? { host: listen.host, port: listen.port, ...(listen.tls ? { tls: listen.tls } : {}) } : {}),
      ...(this.options.utilisation ? { utilisation: this.options.utilisation } : {}),
    });
  }

  #watch(source: SyncSource, peer?: Exposed): void {
    // Recorded: a connection of an echo replaced by a newer authenticated one (and closed).
    source.on('superseded', (echo: string) =>
      this.options.onEvent?.(
        echo,
        'security',
        'a newer authenticated sync connection of this echo replaced its previous one, which was closed',
      ),
    );
    // A peer refused before the frame protocol (TLS): said once per occurrence, for that host's echoes.
    if (peer)
      source.on('error', (err: Error) => {
        const echo = [...peer.echoes][0];
        if (echo) this.options.onEvent?.(echo, 'security', err.message);
      });
  }

  async #closeSources(): Promise<void> {
    await this.#source?.close();
    this.#source = undefined;
    for (const e of this.#exposed.values()) {
      await e.source?.close();
      e.source = undefined;
    }
  }

  /** The primary whose state is the source; closes the previous source and re-points every echo. */
  async setPrimary(stateDir: string): Promise<void> {
    if (this.#closed || (this.#primaryDir === stateDir && !this.#remote)) return;
    await this.#closeSources();
    this.#remote = undefined;
    this.#primaryDir = stateDir;
    this.#source = await this.#createSource(stateDir, this.#key);
    this.#watch(this.#source);
    for (const e of this.#exposed.values()) await this.#openExposed(e);
    for (const [id, { dir }] of [...this.#targets.entries()]) await this.addEcho(id, dir);
  }

  async #openExposed(e: Exposed): Promise<void> {
    if (!this.#primaryDir || e.source) return;
    const open = (port: number) =>
      this.#createSource(this.#primaryDir!, e.listen.key, {
        host: e.listen.host,
        port,
        ...(e.listen.tls ? { tls: e.listen.tls } : {}),
      });
    // The same port as before when it is free: the other host's targets reconnect without being told.
    const source = await open(e.port).catch((err: unknown) =>
      e.port !== 0 ? open(0) : Promise.reject(err as Error),
    );
    e.source = source;
    e.port = source.port;
    this.#watch(source, e);
  }

  /**
   * Cross-host: serves echo `id` of host `peer` from the primary's directory, on a source of that host's
   * own (listening on `listen.host`, under the pair's key and TLS). Returns its port. Needs a primary.
   */
  async exposeTo(peer: string, id: string, listen: SyncListen): Promise<number> {
    if (this.#closed) throw new UnderstudyError(ErrorCode.NotFound, 'this file sync is closed');
    if (!this.#primaryDir || this.#remote)
      throw new UnderstudyError(
        ErrorCode.StateDir,
        `no primary of ${this.options.service} on this host to serve echo ${id} of host '${peer}' from`,
      );
    await this.removeEcho(id);
    for (const e of this.#exposed.values()) e.echoes.delete(id);
    let e = this.#exposed.get(peer);
    if (!e) {
      e = { listen, source: undefined, port: 0, echoes: new Set() };
      this.#exposed.set(peer, e);
    }
    e.echoes.add(id);
    await this.#openExposed(e);
    return e.port;
  }

  /**
   * Cross-host: the primary is on another host; this host's echoes (every {@link addEcho}) sync from
   * it. Any source of this host closes (its primary moved away).
   */
  async followRemote(primary: RemoteSyncPrimary): Promise<void> {
    if (this.#closed) return;
    const same = this.#remote && this.#remote.host === primary.host && this.#remote.port === primary.port;
    if (same) return;
    await this.#closeSources();
    this.#exposed.clear();
    this.#primaryDir = undefined;
    this.#remote = primary;
    for (const [id, { dir }] of [...this.#targets.entries()]) await this.addEcho(id, dir);
  }

  /** Syncs the primary's state into an echo's state directory (from when a primary exists). */
  async addEcho(id: string, stateDir: string): Promise<void> {
    if (this.#closed) return;
    await this.removeEcho(id);
    const entry: { target: SyncTarget | undefined; dir: string } = { target: undefined, dir: stateDir };
    this.#targets.set(id, entry);
    const remote = this.#remote;
    if (!this.#source && !remote) return;
    const target = await SyncTarget.create({
      dir: stateDir,
      echoId: id,
      ...(remote
        ? {
            host: remote.host,
            port: remote.port,
            key: remote.key,
            ...(remote.tls ? { tls: remote.tls } : {}),
          }
        : { key: this.#key, port: this.#source!.port }),
    });
    target.on('error', (err: Error) => this.options.onEvent?.(id, 'error', err.message));
    target.on('security', (e: { message: string }) => this.options.onEvent?.(id, 'security', e.message));
    if (this.#targets.get(id) === entry) entry.target = target;
    else await target.close();
  }

  /** Stops writing into an echo's directory (it is being promoted, or is gone); an echo of another host is no longer served. */
  async removeEcho(id: string): Promise<void> {
    const entry = this.#targets.get(id);
    this.#targets.delete(id);
    await entry?.target?.close();
    for (const [peer, e] of [...this.#exposed]) {
      if (!e.echoes.delete(id) || e.echoes.size > 0) continue;
      this.#exposed.delete(peer);
      await e.source?.close();
    }
  }

  #stats(id: string): SyncStats | undefined {
    for (const e of this.#exposed.values())
      if (e.echoes.has(id)) return e.source?.stats().find((s) => s.echo === id);
    return this.#source?.stats().find((s) => s.echo === id);
  }

  /** Whether an echo has applied every change seen so far. */
  caughtUp(id: string): boolean {
    const s = this.#stats(id);
    const initialDone =
      s?.initialSync === null || (s !== undefined && s.initialSync.doneBytes >= s.initialSync.totalBytes);
    return s !== undefined && s.connected && initialDone && s.lagBytes === 0 && s.lagSeconds === 0;
  }

  /** Waits until the echo has applied every change (or the timeout passes); a rescan first catches anything unseen. */
  async waitCaughtUp(id: string, timeoutMs: number): Promise<boolean> {
    this.#source?.rescan();
    for (const e of this.#exposed.values()) e.source?.rescan();
    const deadline = Date.now() + timeoutMs;
    await new Promise((r) => setTimeout(r, 30));
    while (!this.caughtUp(id)) {
      if (Date.now() > deadline || this.#closed) return false;
      await new Promise((r) => setTimeout(r, 10));
    }
    return true;
  }

  /** Every echo of this sync: those on this host, and (on the primary's host) those of other hosts it serves. */
  echoes(): EchoFileSyncView[] {
    const remote = [...this.#exposed.values()].flatMap((e) =>
      [...e.echoes].map((id) => ({ id, target: undefined as SyncTarget | undefined })),
    );
    const local = [...this.#targets.entries()].map(([id, { target }]) => ({ id, target }));
    return [...local, ...remote].map(({ id, target }) => {
      const s = this.#stats(id);
      const t = target?.stats();
      return {
        echo: id,
        connected: t?.connected ?? s?.connected ?? false,
        lagSeconds: s?.lagSeconds ?? 0,
        lagBytes: s?.lagBytes ?? 0,
        changeRateBytesPerSec: s?.changeRateBytesPerSec ?? 0,
        changeRateFilesPerSec: s?.changeRateFilesPerSec ?? 0,
        wireBytes: s?.wireBytes ?? 0,
        compressionRatio: s?.compressionRatio ?? 1,
        lastAppliedSeq: t?.lastAppliedSeq ?? s?.lastAckedSeq ?? 0,
        errors: (s?.errors ?? 0) + (t?.errors ?? 0),
        initialSync:
          s?.initialSync && s.initialSync.doneBytes < s.initialSync.totalBytes
            ? { ...s.initialSync }
            : s
              ? null
              : { doneBytes: 0, totalBytes: 0 },
      };
    });
  }

  /** Closes the sources and every target. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all([...this.#targets.values()].map((t) => t.target?.close()));
    this.#targets.clear();
    await this.#closeSources();
    this.#exposed.clear();
  }
}
