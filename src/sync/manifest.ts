import { join } from 'node:path';
import { hashFile } from './content-hash.js';
import type { ManifestEntry } from './messages.js';
import { childPath, listDir, readEntry } from './tree-scan.js';

/** Walks a tree without following links and lists every entry with the content hash of files. */
export async function buildManifest(root: string, skip?: (path: string) => boolean): Promise<ManifestEntry[]> {
  const out: ManifestEntry[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const name of (await listDir(root, dir)).sort()) {
      const p = childPath(dir, name);
      if (skip?.(p)) continue;
      const e = await readEntry(root, p);
      if (e === null || e === 'special') continue;
      if (e.type === 'dir') {
        out.push({ type: 'dir', path: p, mode: e.mode });
        await walk(p);
      } else if (e.type === 'symlink') out.push({ type: 'symlink', path: p, target: e.target });
      else {
        try {
          const { hash, size } = await hashFile(join(root, p));
          out.push({ type: 'file', path: p, mode: e.mode, size, hash });
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        }
      }
    }
  };
  await walk('');
  return out;
}
