import { resolve } from 'node:path';
import { buildManifest } from './manifest.js';
import type { ManifestEntry } from './messages.js';

/** One difference between two trees. */
export interface TreeDifference {
  readonly path: string;
  readonly kind: 'only-in-a' | 'only-in-b' | 'type' | 'content' | 'mode' | 'symlink-target';
  /** What `a` has (type, hash, mode or link target), when it has something. */
  readonly a?: string;
  /** What `b` has. */
  readonly b?: string;
}

/** Options of {@link verifyTrees}. */
export interface VerifyTreesOptions {
  /** Compare permission bits too. @default true */
  readonly modes?: boolean;
  /** Relative paths to leave out (e.g. a journal directory inside the tree). */
  readonly skip?: (path: string) => boolean;
}

function describe(e: ManifestEntry): string {
  return e.type === 'file' ? `file ${e.hash}` : e.type === 'dir' ? 'dir' : `symlink -> ${e.target}`;
}

/**
 * Compares two directory trees by content hash (SHA-256/128 of every file), type, permission bits and
 * symlink targets, never following links. Returns the differences, sorted by path; empty when equal.
 */
export async function verifyTrees(
  dirA: string,
  dirB: string,
  options: VerifyTreesOptions = {},
): Promise<TreeDifference[]> {
  const modes = options.modes ?? true;
  const [ma, mb] = await Promise.all([
    buildManifest(resolve(dirA), options.skip),
    buildManifest(resolve(dirB), options.skip),
  ]);
  const bMap = new Map(mb.map((e) => [e.path, e]));
  const diffs: TreeDifference[] = [];
  for (const ea of ma) {
    const eb = bMap.get(ea.path);
    bMap.delete(ea.path);
    if (!eb) diffs.push({ path: ea.path, kind: 'only-in-a', a: describe(ea) });
    else if (ea.type !== eb.type) diffs.push({ path: ea.path, kind: 'type', a: ea.type, b: eb.type });
    else if (ea.type === 'file' && eb.type === 'file' && ea.hash !== eb.hash)
      diffs.push({ path: ea.path, kind: 'content', a: ea.hash, b: eb.hash });
    else if (ea.type === 'symlink' && eb.type === 'symlink' && ea.target !== eb.target)
      diffs.push({ path: ea.path, kind: 'symlink-target', a: ea.target, b: eb.target });
    else if (modes && ea.type !== 'symlink' && eb.type !== 'symlink' && ea.mode !== eb.mode) {
      diffs.push({ path: ea.path, kind: 'mode', a: ea.mode.toString(8), b: eb.mode.toString(8) });
    }
  }
  for (const eb of bMap.values()) diffs.push({ path: eb.path, kind: 'only-in-b', b: describe(eb) });
  return diffs.sort((x, y) => (x.path < y.path ? -1 : x.path > y.path ? 1 : 0));
}
