import type { Unwatch, WatchEvent } from './state-store.js';

/** How one watcher was registered with a {@link WatchHub}. */
export interface WatcherRegistration {
  prefix: string;
  listener: (event: WatchEvent) => void;
  /** Replayed events, delivered before any live one. */
  backlog?: WatchEvent[];
  /** Live events at or before this revision are skipped (a watch from a future revision). */
  skipThrough?: number;
  signal?: AbortSignal;
  onError?: (error: Error) => void;
}

interface Watcher {
  prefix: string;
  listener: (event: WatchEvent) => void;
  onError: ((error: Error) => void) | undefined;
  queue: WatchEvent[];
  skipThrough: number;
  active: boolean;
  detach: () => void;
}

/**
 * Fans store changes out to prefix watchers. Each watcher has its own queue, drained in a microtask,
 * so events reach a listener in the order they were published and never inside the write that caused
 * them (a listener may itself write to the store). Shared by the store implementations.
 */
export class WatchHub {
  readonly #watchers = new Set<Watcher>();
  #scheduled = false;

  /** Number of active watchers. */
  get size(): number {
    return this.#watchers.size;
  }

  /** Registers a watcher; returns the idempotent function that ends it. */
  add(reg: WatcherRegistration): Unwatch {
    const watcher: Watcher = {
      prefix: reg.prefix,
      listener: reg.listener,
      onError: reg.onError,
      queue: reg.backlog ? [...reg.backlog] : [],
      skipThrough: reg.skipThrough ?? -Infinity,
      active: true,
      detach: () => undefined,
    };
    const unwatch = (): void => {
      if (!watcher.active) return;
      watcher.active = false;
      watcher.queue = [];
      this.#watchers.delete(watcher);
      watcher.detach();
    };
    if (reg.signal?.aborted) {
      watcher.active = false;
      return unwatch;
    }
    if (reg.signal) {
      const signal = reg.signal;
      signal.addEventListener('abort', unwatch, { once: true });
      watcher.detach = () => signal.removeEventListener('abort', unwatch);
    }
    this.#watchers.add(watcher);
    if (watcher.queue.length > 0) this.#schedule();
    return unwatch;
  }

  /** Queues `events` (in revision order) for every watcher whose prefix matches. */
  publish(events: readonly WatchEvent[]): void {
    if (events.length === 0 || this.#watchers.size === 0) return;
    for (const w of this.#watchers) {
      for (const e of events) {
        if (e.revision > w.skipThrough && e.key.startsWith(w.prefix)) w.queue.push(e);
      }
    }
    this.#schedule();
  }

  /** Ends every watch abnormally: each `onError` receives `error`, no event follows. */
  failAll(error: Error): void {
    const watchers = [...this.#watchers];
    this.closeAll();
    for (const w of watchers) this.#report(w, error);
  }

  /** Ends every watch quietly (the store is closing). */
  closeAll(): void {
    for (const w of [...this.#watchers]) {
      w.active = false;
      w.queue = [];
      w.detach();
    }
    this.#watchers.clear();
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    queueMicrotask(() => this.#drain());
  }

  #drain(): void {
    this.#scheduled = false;
    let delivered = true;
    // A listener may write (publishing more events) or unwatch; loop until every queue is empty.
    while (delivered) {
      delivered = false;
      for (const w of [...this.#watchers]) {
        if (!w.active || w.queue.length === 0) continue;
        // Take the batch; events published meanwhile land in a fresh queue, delivered on the next pass.
        const batch = w.queue;
        w.queue = [];
        delivered = true;
        for (const event of batch) {
          if (!w.active) break;
          try {
            w.listener(event);
          } catch (err) {
            this.#report(w, err instanceof Error ? err : new Error(String(err)));
          }
        }
      }
    }
  }

  #report(w: Watcher, error: Error): void {
    if (w.onError) {
      try {
        w.onError(error);
        return;
      } catch (err) {
        error = err instanceof Error ? err : new Error(String(err));
      }
    }
    process.emitWarning(error);
  }
}
