import { join } from 'node:path';
import { hashFile } from './content-hash.js';
import type { ManifestEntry } from './messages.js';
import { childPath, listDir, readEntry } from './tree-scan.js';

/** Runs `fn` over `items`, `limit` at a time. */
async function eachLimit<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++] as T);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/** Walks a tree without following links and lists every entry (sorted by path) with the content hash of files. */
export async function buildManifest(
  root: string,
  skip?: (path: string) => boolean,
): Promise<ManifestEntry[]> {
  const out: ManifestEntry[] = [];
  const walk = async (dir: string): Promise<void> => {
    const names = (await listDir(root, dir)).filter((n) => !skip?.(childPath(dir, n)));
    const subdirs: string[] = [];
    await eachLimit(names, 32, async (name) => {
      const p = childPath(dir, name);
      const e = await readEntry(root, p);
      if (e === null || e === 'special') return;
      if (e.type === 'dir') {
        out.push({ type: 'dir', path: p, mode: e.mode });
        subdirs.push(p);
      } else if (e.type === 'symlink') out.push({ type: 'symlink', path: p, target: e.target });
      else {
        try {
          const { hash, size } = await hashFile(join(root, p));
          out.push({ type: 'file', path: p, mode: e.mode, size, hash });
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        }
      }
    });
    for (const d of subdirs) await walk(d);
  };
  await walk('');
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}
