import { watch, type FSWatcher } from 'node:fs';
import { join } from 'node:path';
import { childPath } from './tree-scan.js';

/**
 * Change capture on the primary: one inotify watch (fs.watch) per directory, reporting the changed
 * child path, plus a periodic deep scan request as the safety net for anything the watches miss
 * (queue overflow, watch limits, races with new directories). Directories are added by the caller
 * as it discovers them, after which it lists them, so nothing created in between is lost.
 */
export class ChangeWatcher {
  readonly #watchers = new Map<string, FSWatcher>();
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  /** True when a watch could not be added (e.g. the inotify watch limit); the scan still catches up. */
  degraded = false;

  constructor(
    readonly root: string,
    private readonly onChange: (path: string, deep: boolean) => void,
    private readonly options: { readonly watch: boolean; readonly scanIntervalMs: number },
  ) {
    if (options.scanIntervalMs > 0) {
      this.#timer = setInterval(() => this.onChange('', true), options.scanIntervalMs);
      this.#timer.unref();
    }
  }

  /** Number of directories watched. */
  get watchedDirs(): number {
    return this.#watchers.size;
  }

  /** Watches a directory (relative, '' for the root). Idempotent. */
  addDir(rel: string): void {
    if (!this.options.watch || this.#closed || this.#watchers.has(rel)) return;
    try {
      const w = watch(
        rel === '' ? this.root : join(this.root, rel),
        { persistent: false },
        (_event, name) => {
          if (name === null) this.onChange(rel, true);
          else this.onChange(childPath(rel, name.toString()), false);
        },
      );
      w.on('error', () => {
        w.close();
        this.#watchers.delete(rel);
        this.onChange(rel, true);
      });
      this.#watchers.set(rel, w);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOSPC' || code === 'EMFILE') this.degraded = true;
    }
  }

  /** Stops watching a directory and everything under it (it was deleted or replaced). */
  removeTree(rel: string): void {
    for (const [r, w] of this.#watchers) {
      if (r === rel || (rel === '' ? true : r.startsWith(rel + '/'))) {
        w.close();
        this.#watchers.delete(r);
      }
    }
  }

  /** Stops watching directories for which `keep` returns false (deleted ones). */
  prune(keep: (rel: string) => boolean): void {
    for (const [rel, w] of this.#watchers) {
      if (!keep(rel)) {
        w.close();
        this.#watchers.delete(rel);
      }
    }
  }

  close(): void {
    this.#closed = true;
    if (this.#timer) clearInterval(this.#timer);
    for (const w of this.#watchers.values()) w.close();
    this.#watchers.clear();
  }
}
