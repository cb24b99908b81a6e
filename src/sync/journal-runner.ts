import {
  closeSync,
  constants as fsc,
  fchmodSync,
  fstatSync,
  ftruncateSync,
  futimesSync,
  openSync,
  renameSync,
  writeSync,
} from 'node:fs';
import { chmod, mkdir, open, readlink, rename, rm, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { lstatOrNull, lstatOrNullSync, type Journal, type JournalStep } from './apply-io.js';
import { ByteReader } from './byte-codec.js';
import type { PatchHashes } from './file-builder.js';
import { assertSafeRelativePath, parentOf, parentsOf, unsafePath } from './path-safety.js';

/**
 * Runs a committed journal record's steps in the echo's tree (idempotently: a record is re-run after
 * a crash). Carried steps run first, one at a time; then the others in phases in journal order: within
 * a phase they are independent and run 32 at a time, except mkdirs, which run in order (parents first). Returns the paths whose durability the
 * steps changed (directories whose entries changed, patched files), to be fsynced before the next
 * record is written.
 */
export async function runJournal(
  root: string,
  journal: Journal,
  redo: Buffer,
  stagingDir: string,
  hashes: PatchHashes,
): Promise<Set<string>> {
  const effects = new Set<string>();
  // Directories verified as real (not symlinks) in the current phase; reset between phases.
  let verified = new Map<string, Promise<void>>();
  const checkParents = async (path: string): Promise<void> => {
    for (const p of parentsOf(path)) {
      let v = verified.get(p);
      if (!v) {
        v = lstatOrNull(join(root, p)).then((st) => {
          if (st?.isSymbolicLink()) throw unsafePath(path, `parent ${JSON.stringify(p)} is a symlink`);
          if (st && !st.isDirectory())
            throw unsafePath(path, `parent ${JSON.stringify(p)} is not a directory`);
        });
        verified.set(p, v);
      }
      await v;
    }
  };
  const guard = async (s: JournalStep): Promise<string> => {
    assertSafeRelativePath(s.path);
    await checkParents(s.path);
    // Patches and mode changes leave directory entries as they are.
    if (s.k !== 'patch' && s.k !== 'chmod') effects.add(join(root, parentOf(s.path)));
    return join(root, s.path);
  };
  // Carried patches of earlier batches run one at a time, in order (they may touch the same file).
  const carried = journal.carried ?? 0;
  const phases: JournalStep[][] = journal.steps.slice(0, carried).map((st) => [st]);
  let last = '';
  for (const st of journal.steps.slice(carried)) {
    const kind =
      st.k === 'delete' ? 'delete' : st.k === 'mkdir' ? 'mkdir' : st.k === 'chmod' ? 'chmod' : 'final';
    if (kind !== last || kind === 'mkdir') phases.push([]);
    (phases[phases.length - 1] as JournalStep[]).push(st);
    last = kind;
  }
  for (const phase of phases) {
    verified = new Map();
    for (let i = 0; i < phase.length; i += 32)
      await Promise.all(
        phase.slice(i, i + 32).map(async (st) => {
          const abs = await guard(st);
          await runStep(st, abs, redo, stagingDir, hashes);
          if (st.k === 'patch') effects.add(abs);
        }),
      );
  }
  return effects;
}

async function runStep(
  s: JournalStep,
  abs: string,
  redo: Buffer,
  dir: string,
  hashes: PatchHashes,
): Promise<void> {
  switch (s.k) {
    case 'delete':
      await rm(abs, { recursive: true, force: true });
      break;
    case 'mkdir': {
      const st = await lstatOrNull(abs);
      if (st && !st.isDirectory()) await rm(abs, { recursive: true, force: true });
      if (!st || !st.isDirectory()) await mkdir(abs);
      await chmod(abs, s.mode);
      break;
    }
    case 'place': {
      // Metadata calls of a few microseconds each: synchronous, no thread-pool round trips.
      const stagedPath = join(dir, s.staged);
      if (!lstatOrNullSync(stagedPath)) break; // placed before a crash
      if (lstatOrNullSync(abs)?.isDirectory()) await rm(abs, { recursive: true, force: true });
      renameSync(stagedPath, abs);
      break;
    }
    case 'patch': {
      // Writing the ranges and truncating is idempotent, so a re-run after a crash is harmless.
      if (s.len <= SYNC_PATCH_BYTES) {
        patchSync(s, abs, redo, hashes);
        break;
      }
      const fh = await open(abs, fsc.O_RDWR | fsc.O_NOFOLLOW);
      try {
        const before = await fh.stat();
        const ranges = patchRanges(s, redo);
        for (const { off, data } of ranges) await fh.write(data, 0, data.length, off);
        if (patchedSize(before.size, ranges) !== s.size) await fh.truncate(s.size);
        if ((before.mode & 0o7777) !== s.mode) await fh.chmod(s.mode);
        if (s.mtimeMs > 0) await fh.utimes(new Date(s.mtimeMs), new Date(s.mtimeMs));
        if (hashes.hasStaged(s.path)) hashes.applied(s.path, await fh.stat());
      } finally {
        await fh.close();
      }
      break;
    }
    case 'symlink': {
      const st = await lstatOrNull(abs);
      if (st?.isSymbolicLink() && (await readlink(abs)) === s.target) break;
      if (st?.isDirectory()) await rm(abs, { recursive: true, force: true });
      const stagedPath = join(dir, s.staged);
      if (!(await lstatOrNull(stagedPath))) await symlink(s.target, stagedPath);
      await rename(stagedPath, abs);
      break;
    }
    case 'chmod': {
      const st = await lstatOrNull(abs);
      if (st && !st.isSymbolicLink()) await chmod(abs, s.mode);
      break;
    }
  }
}

type PatchStep = Extract<JournalStep, { k: 'patch' }>;

/** A patch step's ranges, from its section of the journal's redo data (`varint count`, then ranges). */
function patchRanges(s: PatchStep, redo: Buffer): { off: number; data: Uint8Array }[] {
  const r = new ByteReader(redo.subarray(s.at, s.at + s.len));
  const n = r.varint();
  const out: { off: number; data: Uint8Array }[] = [];
  for (let i = 0; i < n; i++) out.push({ off: r.varint(), data: r.lbytes() });
  return out;
}

/** Size of a file of `size` bytes once `ranges` are written over it (before any truncation). */
function patchedSize(size: number, ranges: readonly { off: number; data: Uint8Array }[]): number {
  return ranges.reduce((end, r) => Math.max(end, r.off + r.data.length), size);
}

/** Patches up to this many redo bytes are applied with synchronous calls (page-cache writes). */
const SYNC_PATCH_BYTES = 256 * 1024;

/**
 * A small patch in one go, without thread-pool round trips: each call is a page-cache operation of a
 * few microseconds, and a dozen round trips would cost more than the work (the fsync stays async).
 */
function patchSync(s: PatchStep, abs: string, redo: Buffer, hashes: PatchHashes): void {
  const fd = openSync(abs, fsc.O_RDWR | fsc.O_NOFOLLOW);
  try {
    const before = fstatSync(fd);
    const ranges = patchRanges(s, redo);
    for (const { off, data } of ranges)
      for (let done = 0; done < data.length;)
        done += writeSync(fd, data, done, data.length - done, off + done);
    if (patchedSize(before.size, ranges) !== s.size) ftruncateSync(fd, s.size);
    if ((before.mode & 0o7777) !== s.mode) fchmodSync(fd, s.mode);
    if (s.mtimeMs > 0) futimesSync(fd, new Date(s.mtimeMs), new Date(s.mtimeMs));
    if (hashes.hasStaged(s.path)) hashes.applied(s.path, fstatSync(fd));
  } finally {
    closeSync(fd);
  }
}
