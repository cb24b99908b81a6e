import type { FileSignature } from './signature.js';
import { childPath } from './tree-scan.js';
import { parentOf } from './path-safety.js';

/** What the primary believes an echo holds at a path (as of the last batch it produced). */
export type ViewEntry =
  | {
      readonly type: 'file';
      readonly mode: number;
      readonly size: number;
      /** Quick-check fields from the primary's lstat when last sent (0 when unknown, e.g. from a manifest). */
      readonly mtimeMs: number;
      readonly ino: number;
      readonly hash: string;
      /** Block signature of the echo's content; null when unknown; a promise while being computed. */
      readonly sig: FileSignature | Promise<FileSignature> | null;
    }
  | { readonly type: 'dir'; readonly mode: number }
  | { readonly type: 'symlink'; readonly target: string };

/** The per-echo view: entries by path, with child, hash and inode indexes for change detection and dedup. */
export class TreeView {
  readonly #entries = new Map<string, ViewEntry>();
  readonly #children = new Map<string, Set<string>>();
  readonly #byHash = new Map<string, Set<string>>();
  readonly #byIno = new Map<number, string>();
  readonly #bySize = new Map<number, number>();

  get size(): number {
    return this.#entries.size;
  }
  get(path: string): ViewEntry | undefined {
    return this.#entries.get(path);
  }
  entries(): IterableIterator<[string, ViewEntry]> {
    return this.#entries.entries();
  }
  /** Names of the children of `dir` ('' is the root). */
  children(dir: string): ReadonlySet<string> {
    return this.#children.get(dir) ?? new Set();
  }
  /** A path whose echo content has `hash`, if any. */
  pathWithHash(hash: string): string | undefined {
    const s = this.#byHash.get(hash);
    if (!s) return undefined;
    for (const p of s) return p;
    return undefined;
  }
  /** Whether some file of exactly `size` bytes is in the view (no content twin is possible otherwise). */
  hasFileOfSize(size: number): boolean {
    return this.#bySize.has(size);
  }
  /** The path last seen with inode `ino`. */
  pathWithIno(ino: number): string | undefined {
    return this.#byIno.get(ino);
  }

  set(path: string, entry: ViewEntry): void {
    const old = this.#entries.get(path);
    if (old && old.type !== entry.type && old.type === 'dir') this.#deleteChildren(path);
    this.#unindex(path, old);
    this.#entries.set(path, entry);
    if (!old) {
      const parent = parentOf(path);
      let set = this.#children.get(parent);
      if (!set) this.#children.set(parent, (set = new Set()));
      set.add(path.slice(parent === '' ? 0 : parent.length + 1));
    }
    if (entry.type === 'file') {
      let s = this.#byHash.get(entry.hash);
      if (!s) this.#byHash.set(entry.hash, (s = new Set()));
      s.add(path);
      if (entry.ino > 0) this.#byIno.set(entry.ino, path);
      this.#bySize.set(entry.size, (this.#bySize.get(entry.size) ?? 0) + 1);
    }
  }

  /** Removes a path and everything under it. */
  delete(path: string): void {
    const old = this.#entries.get(path);
    if (!old) return;
    if (old.type === 'dir') this.#deleteChildren(path);
    this.#unindex(path, old);
    this.#entries.delete(path);
    const parent = parentOf(path);
    this.#children.get(parent)?.delete(path.slice(parent === '' ? 0 : parent.length + 1));
  }

  #deleteChildren(dir: string): void {
    const kids = this.#children.get(dir);
    if (!kids) return;
    for (const name of [...kids]) this.delete(childPath(dir, name));
    this.#children.delete(dir);
  }

  #unindex(path: string, old: ViewEntry | undefined): void {
    if (old?.type !== 'file') return;
    const s = this.#byHash.get(old.hash);
    s?.delete(path);
    if (s?.size === 0) this.#byHash.delete(old.hash);
    if (old.ino > 0 && this.#byIno.get(old.ino) === path) this.#byIno.delete(old.ino);
    const n = (this.#bySize.get(old.size) ?? 0) - 1;
    if (n > 0) this.#bySize.set(old.size, n);
    else this.#bySize.delete(old.size);
  }

  clear(): void {
    this.#entries.clear();
    this.#children.clear();
    this.#byHash.clear();
    this.#byIno.clear();
    this.#bySize.clear();
  }
}
