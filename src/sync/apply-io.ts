import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { type Stats } from 'node:fs';
import { lstat, open, type FileHandle } from 'node:fs/promises';
import { UnderstudyError, ErrorCode } from '../errors/index.js';
import { ContentHasher } from './content-hash.js';

// File-system helpers and the journal record format of the echo's batch applier.

/** A step of a committed batch, replayed idempotently after a crash. */
export type JournalStep =
  | { k: 'delete'; path: string }
  | { k: 'mkdir'; path: string; mode: number }
  | { k: 'place'; path: string; staged: string }
  | { k: 'patch'; path: string; staged: string; size: number; mode: number; mtimeMs: number }
  | { k: 'symlink'; path: string; target: string; staged: string }
  | { k: 'chmod'; path: string; mode: number };

export interface Journal {
  gen: number;
  lineage: string;
  seq: number;
  steps: JournalStep[];
}

/** Journal slots: batch N is committed into slot N % 2, so the previous batch's record survives. */
export const SLOTS = ['journal-0', 'journal-1'] as const;

export function encodeJournal(j: Journal): Buffer {
  const body = JSON.stringify(j);
  const sum = createHash('sha256').update(body).digest('hex');
  return Buffer.from(`${sum}\n${body}`);
}
export function decodeJournal(b: Buffer): Journal | undefined {
  const s = b.toString('utf8');
  const nl = s.indexOf('\n');
  if (nl !== 64) return undefined;
  const body = s.slice(65);
  if (createHash('sha256').update(body).digest('hex') !== s.slice(0, 64)) return undefined;
  return JSON.parse(body) as Journal;
}

/** Hashes `base` with `patch` ranges laid over it, truncated or extended to `size`. */
export async function hashPatched(
  base: FileHandle,
  baseSize: number,
  patch: readonly { off: number; data: Buffer }[],
  size: number,
  buf: Buffer,
): Promise<ContentHasher> {
  const h = new ContentHasher();
  let ri = 0;
  for (let p = 0; p < size; p += buf.length) {
    const len = Math.min(buf.length, size - p);
    const chunk = buf.subarray(0, len);
    const fromBase = Math.max(0, Math.min(len, baseSize - p));
    if (fromBase > 0) {
      const { bytesRead } = await base.read(chunk, 0, fromBase, p);
      if (bytesRead !== fromBase)
        throw new UnderstudyError(ErrorCode.SyncVerify, 'delta base changed while applying');
    }
    while (
      ri < patch.length &&
      (patch[ri] as { off: number; data: Buffer }).off + (patch[ri] as { data: Buffer }).data.length <= p
    )
      ri++;
    for (let i = ri; i < patch.length; i++) {
      const r = patch[i] as { off: number; data: Buffer };
      if (r.off >= p + len) break;
      const s = Math.max(r.off, p);
      const e = Math.min(r.off + r.data.length, p + len);
      if (e > s) r.data.copy(chunk, s - p, s - r.off, e - r.off);
    }
    h.update(chunk);
  }
  return h;
}

/** Flushes the whole filesystem holding `path` with syncfs(2) via coreutils `sync -f`; false if unavailable. */
export async function syncFilesystem(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    execFile('sync', ['-f', path], (err) => resolve(!err));
  });
}

/** fsyncs many paths, 16 at a time; `lenient` ignores paths that vanished. */
export async function fsyncAll(paths: readonly string[], lenient = false): Promise<void> {
  for (let i = 0; i < paths.length; i += 16) {
    await Promise.all(
      paths.slice(i, i + 16).map((p) => (lenient ? fsyncPath(p).catch(() => undefined) : fsyncPath(p))),
    );
  }
}

export async function fsyncPath(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export async function lstatOrNull(path: string): Promise<Stats | null> {
  try {
    return await lstat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}
