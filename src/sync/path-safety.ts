import { lstatSync } from 'node:fs';
import { lstat } from 'node:fs/promises';
import { join } from 'node:path';
import { UnderstudyError, ErrorCode } from '../errors/index.js';
import { MAX_PATH_BYTES } from './messages.js';

/** Thrown (as `UNDERSTUDY_ERR_SYNC_PATH`) for a path that could reach outside the state directory. */
export function unsafePath(path: string, reason: string): UnderstudyError {
  return new UnderstudyError(
    ErrorCode.SyncPath,
    `unsafe sync path ${JSON.stringify(path.slice(0, 200))}: ${reason}`,
    {
      details: { path: path.slice(0, 1000), reason },
    },
  );
}

/**
 * Checks that `path` is a plain relative path inside the tree: not empty, not absolute, no `.`/`..`
 * or empty segments, no NUL, bounded length. Throws `UNDERSTUDY_ERR_SYNC_PATH` otherwise.
 */
export function assertSafeRelativePath(path: string): void {
  if (path.length === 0) throw unsafePath(path, 'empty');
  if (Buffer.byteLength(path) > MAX_PATH_BYTES) throw unsafePath(path, 'too long');
  if (path.includes('\0')) throw unsafePath(path, 'contains NUL');
  if (path.startsWith('/')) throw unsafePath(path, 'absolute');
  for (const seg of path.split('/')) {
    if (seg === '' || seg === '.' || seg === '..') throw unsafePath(path, `segment ${JSON.stringify(seg)}`);
  }
}

/** Parent directories of a relative path, outermost first: `a/b/c` → `a`, `a/b`. */
export function parentsOf(path: string): string[] {
  const segs = path.split('/');
  const out: string[] = [];
  for (let i = 1; i < segs.length; i++) out.push(segs.slice(0, i).join('/'));
  return out;
}

/** Parent of a relative path, or '' for a top-level entry. */
export function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i < 0 ? '' : path.slice(0, i);
}

/**
 * Checks on disk that no parent of `path` under `root` is a symlink or a non-directory.
 * Missing parents are reported through the return value (`false`), not thrown.
 */
export async function parentsAreRealDirs(root: string, path: string): Promise<boolean> {
  for (const p of parentsOf(path)) {
    let st;
    try {
      st = await lstat(join(root, p));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
    if (st.isSymbolicLink()) throw unsafePath(path, `parent ${JSON.stringify(p)} is a symlink`);
    if (!st.isDirectory()) throw unsafePath(path, `parent ${JSON.stringify(p)} is not a directory`);
  }
  return true;
}

/** {@link parentsAreRealDirs}, synchronously (a few lstat calls; cheaper than thread-pool round trips). */
export function parentsAreRealDirsSync(root: string, path: string): boolean {
  for (const p of parentsOf(path)) {
    const st = lstatSync(join(root, p), { throwIfNoEntry: false });
    if (!st) return false;
    if (st.isSymbolicLink()) throw unsafePath(path, `parent ${JSON.stringify(p)} is a symlink`);
    if (!st.isDirectory()) throw unsafePath(path, `parent ${JSON.stringify(p)} is not a directory`);
  }
  return true;
}
