import { randomBytes } from 'node:crypto';
import { SyncSource, SyncTarget, type SyncStats } from '../sync/index.js';

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

/**
 * The file-state sync of one service on this host (seed 000's state synchronisation agent): a
 * {@link SyncSource} on the primary's state directory and a {@link SyncTarget} for each warm or cold
 * echo, over loopback TCP under a per-service key (handshake with key confirmation, then frames
 * encrypted with AES-256-GCM). On promotion the source moves to the new
 * primary and every echo is re-pointed at it (it resyncs only what differs).
 */
export class ServiceFileSync {
  readonly #key: Buffer;
  #source: SyncSource | undefined;
  #primaryDir: string | undefined;
  /** Every echo, with its target once a primary (source) exists. */
  readonly #targets = new Map<string, { target: SyncTarget | undefined; dir: string }>();
  #closed = false;

  constructor(private readonly options: ServiceFileSyncOptions) {
    this.#key = options.key ?? randomBytes(32);
  }

  /** The primary whose state is the source; closes the previous source and re-points every echo. */
  async setPrimary(stateDir: string): Promise<void> {
    if (this.#closed || this.#primaryDir === stateDir) return;
    await this.#source?.close();
    this.#source = undefined;
    this.#primaryDir = stateDir;
    const s = this.options.settings;
    this.#source = await SyncSource.create({
      dir: stateDir,
      key: this.#key,
      mode: s.mode,
      intervalMs: s.intervalMs,
      bytesThreshold: s.bytesThreshold,
      bandwidthBytesPerSec: s.bandwidthLimit > 0 ? s.bandwidthLimit : null,
      priorities: s.priorities,
      ignore: s.exclude,
      ...(this.options.utilisation ? { utilisation: this.options.utilisation } : {}),
    });
    // Recorded: a connection of an echo replaced by a newer authenticated one (and closed).
    this.#source.on('superseded', (echo: string) =>
      this.options.onEvent?.(
        echo,
        'security',
        'a newer authenticated sync connection of this echo replaced its previous one, which was closed',
      ),
    );
    for (const [id, { dir }] of [...this.#targets.entries()]) await this.addEcho(id, dir);
  }

  /** Syncs the primary's state into an echo's state directory (from when a primary exists). */
  async addEcho(id: string, stateDir: string): Promise<void> {
    if (this.#closed) return;
    await this.removeEcho(id);
    const entry: { target: SyncTarget | undefined; dir: string } = { target: undefined, dir: stateDir };
    this.#targets.set(id, entry);
    if (!this.#source) return;
    const target = await SyncTarget.create({
      dir: stateDir,
      key: this.#key,
      port: this.#source.port,
      echoId: id,
    });
    target.on('error', (err: Error) => this.options.onEvent?.(id, 'error', err.message));
    target.on('security', (e: { message: string }) => this.options.onEvent?.(id, 'security', e.message));
    if (this.#targets.get(id) === entry) entry.target = target;
    else await target.close();
  }

  /** Stops writing into an echo's directory (it is being promoted, or is gone). */
  async removeEcho(id: string): Promise<void> {
    const entry = this.#targets.get(id);
    this.#targets.delete(id);
    await entry?.target?.close();
  }

  #stats(id: string): SyncStats | undefined {
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
    const deadline = Date.now() + timeoutMs;
    await new Promise((r) => setTimeout(r, 30));
    while (!this.caughtUp(id)) {
      if (Date.now() > deadline || this.#closed) return false;
      await new Promise((r) => setTimeout(r, 10));
    }
    return true;
  }

  echoes(): EchoFileSyncView[] {
    return [...this.#targets.entries()].map(([id, { target }]) => {
      const s = this.#stats(id);
      const t = target?.stats();
      return {
        echo: id,
        connected: t?.connected ?? false,
        lagSeconds: s?.lagSeconds ?? 0,
        lagBytes: s?.lagBytes ?? 0,
        changeRateBytesPerSec: s?.changeRateBytesPerSec ?? 0,
        changeRateFilesPerSec: s?.changeRateFilesPerSec ?? 0,
        wireBytes: s?.wireBytes ?? 0,
        compressionRatio: s?.compressionRatio ?? 1,
        lastAppliedSeq: t?.lastAppliedSeq ?? 0,
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

  /** Closes the source and every target. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all([...this.#targets.values()].map((t) => t.target?.close()));
    this.#targets.clear();
    await this.#source?.close();
  }
}
