import { lstatSync, readlinkSync, type Stats } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';

/** What the primary's tree holds at a path (special files are never replicated). */
export type TreeEntry =
  | {
      readonly type: 'file';
      readonly mode: number;
      readonly size: number;
      readonly mtimeMs: number;
      readonly ctimeMs: number;
      readonly ino: number;
    }
  | { readonly type: 'dir'; readonly mode: number }
  | { readonly type: 'symlink'; readonly target: string };

/** Reads one entry with lstat (never following links); `null` if missing, `'special'` for devices, FIFOs, sockets. */
export async function readEntry(root: string, rel: string): Promise<TreeEntry | null | 'special'> {
  const abs = rel === '' ? root : join(root, rel);
  let st;
  try {
    st = await lstat(abs);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw err;
  }
  if (st.isSymbolicLink()) {
    try {
      return { type: 'symlink', target: await readlink(abs) };
    } catch {
      return null;
    }
  }
  return toEntry(st);
}

/**
 * {@link readEntry} without a thread-pool round trip: for the few paths an inotify event names, one
 * lstat (microseconds) is cheaper than two thread switches.
 */
export function readEntrySync(root: string, rel: string): TreeEntry | null | 'special' {
  const abs = rel === '' ? root : join(root, rel);
  let st;
  try {
    st = lstatSync(abs, { throwIfNoEntry: false });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOTDIR') return null;
    throw err;
  }
  if (!st) return null;
  if (st.isSymbolicLink()) {
    try {
      return { type: 'symlink', target: readlinkSync(abs) };
    } catch {
      return null;
    }
  }
  return toEntry(st);
}

function toEntry(st: Stats): TreeEntry | 'special' {
  if (st.isFile())
    return {
      type: 'file',
      mode: st.mode & 0o7777,
      size: st.size,
      mtimeMs: st.mtimeMs,
      ctimeMs: st.ctimeMs,
      ino: st.ino,
    };
  if (st.isDirectory()) return { type: 'dir', mode: st.mode & 0o7777 };
  return 'special';
}

/** Names in a directory, or `[]` if it vanished. */
export async function listDir(root: string, rel: string): Promise<string[]> {
  try {
    return await readdir(rel === '' ? root : join(root, rel));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return [];
    throw err;
  }
}

/** Joins a relative directory and a name. */
export function childPath(dir: string, name: string): string {
  return dir === '' ? name : `${dir}/${name}`;
}
