import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstatSync, type Stats } from 'node:fs';
import { lstat, open, type FileHandle } from 'node:fs/promises';
import { UnderstudyError, ErrorCode } from '../errors/index.js';
import { ContentHasher } from './content-hash.js';

// File-system helpers and the journal record format of the echo's batch applier.

/**
 * A step of a committed batch, replayed idempotently after a crash. A patch's redo data (its ranges)
 * lives in the journal record's binary section at `[at, at + len)`.
 */
export type JournalStep =
  | { k: 'delete'; path: string }
  | { k: 'mkdir'; path: string; mode: number }
  | { k: 'place'; path: string; staged: string }
  | { k: 'patch'; path: string; at: number; len: number; size: number; mode: number; mtimeMs: number }
  | { k: 'symlink'; path: string; target: string; staged: string }
  | { k: 'chmod'; path: string; mode: number };

export interface Journal {
  gen: number;
  lineage: string;
  seq: number;
  /** Steps to (re-)run after a crash, in order. */
  steps: JournalStep[];
  /**
   * How many leading steps are patches of earlier batches, carried because their effects were not
   * yet durable when this record was written (already run at commit; replayed only after a crash).
   */
  carried?: number;
}

/** Journal slots: batch N is committed into slot N % 2, so the previous batch's record survives. */
export const SLOTS = ['journal-0', 'journal-1'] as const;

/**
 * Encodes a journal record: a header line `<sha256 hex> <json bytes> <redo bytes>\n`, the steps as
 * JSON, then the redo data. The checksum covers both; bytes after them (a longer older record
 * overwritten in place) are ignored.
 */
export function encodeJournal(j: Journal, redo: readonly Buffer[] = []): Buffer {
  const body = Buffer.from(JSON.stringify(j));
  const redoLen = redo.reduce((n, b) => n + b.length, 0);
  const h = createHash('sha256').update(body);
  for (const b of redo) h.update(b);
  const header = Buffer.from(`${h.digest('hex')} ${body.length} ${redoLen}\n`);
  return Buffer.concat([header, body, ...redo]);
}

/** Decodes a journal record; `undefined` when it is torn or corrupt. */
export function decodeJournal(b: Buffer): { journal: Journal; redo: Buffer } | undefined {
  const nl = b.indexOf(10);
  if (nl < 0 || nl > 120) return undefined;
  const m = /^([0-9a-f]{64}) (\d+) (\d+)$/.exec(b.subarray(0, nl).toString('latin1'));
  if (!m) return undefined;
  const bodyLen = Number(m[2]);
  const redoLen = Number(m[3]);
  const start = nl + 1;
  if (b.length < start + bodyLen + redoLen) return undefined;
  const body = b.subarray(start, start + bodyLen);
  const redo = b.subarray(start + bodyLen, start + bodyLen + redoLen);
  if (createHash('sha256').update(body).update(redo).digest('hex') !== m[1]) return undefined;
  return { journal: JSON.parse(body.toString('utf8')) as Journal, redo };
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
  const gone = (err: unknown): void => {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'ENOTDIR') throw err;
  };
  for (let i = 0; i < paths.length; i += 16) {
    await Promise.all(paths.slice(i, i + 16).map((p) => (lenient ? fsyncPath(p).catch(gone) : fsyncPath(p))));
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

/** {@link lstatOrNull} without a trip through the thread pool (for the few stats of a small batch). */
export function lstatOrNullSync(path: string): Stats | null {
  try {
    return lstatSync(path, { throwIfNoEntry: false }) ?? null;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOTDIR') return null;
    throw err;
  }
}
