import { closeSync, constants as fsc, fchmodSync, futimesSync, openSync, writeSync } from 'node:fs';
import { copyFile, open, utimes, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { UnderstudyError, ErrorCode } from '../errors/index.js';
import { hashPatched, lstatOrNullSync, type JournalStep } from './apply-io.js';
import { ByteWriter } from './byte-codec.js';
import type { ByteQueue } from './byte-queue.js';
import { ContentHasher, CONTENT_HASH_BYTES, hashFile } from './content-hash.js';
import { FileRecord } from './file-stream.js';
import type { BatchOp } from './messages.js';

// Building one file of a batch on the echo from its copy/literal records, verified by content hash.

type FileOp = Extract<BatchOp, { op: 'file' }>;

/**
 * SHA-256 state at the end of recently patched files (by path), so that the next append to one is
 * verified by hashing only its tail. States computed while staging become current when applied.
 */
export class PatchHashes {
  readonly #applied = new Map<string, { size: number; ino: number; mtimeMs: number; state: ContentHasher }>();
  readonly #staged = new Map<string, ContentHasher>();

  /** The state at the end of `path` if it is still the file it was computed for. */
  lookup(path: string, st: { size: number; ino: number; mtimeMs: number }): ContentHasher | undefined {
    const c = this.#applied.get(path);
    return c && c.size === st.size && c.ino === st.ino && c.mtimeMs === st.mtimeMs ? c.state : undefined;
  }
  stage(path: string, state: ContentHasher): void {
    this.#staged.set(path, state);
  }
  clearStaged(): void {
    this.#staged.clear();
  }
  /** Whether a staged state waits for `path` to be applied. */
  hasStaged(path: string): boolean {
    return this.#staged.has(path);
  }
  /** `path` was patched and now has `st`: its staged state becomes current. */
  applied(path: string, st: { size: number; ino: number; mtimeMs: number }): void {
    const state = this.#staged.get(path);
    this.#staged.delete(path);
    if (!state) return;
    this.#applied.delete(path);
    this.#applied.set(path, { size: st.size, ino: st.ino, mtimeMs: st.mtimeMs, state });
    if (this.#applied.size > 1024) this.#applied.delete(this.#applied.keys().next().value as string);
  }
}

/** A big new file's write-back is started each time this much more of it has been written. */
const FLUSH_EVERY = 32 << 20;

function mismatch(path: string, expected: string, actual: string): UnderstudyError {
  return new UnderstudyError(
    ErrorCode.SyncVerify,
    `file ${JSON.stringify(path)} does not match its source hash after apply`,
    { details: { path, expected, actual } },
  );
}

/**
 * Reads a new file's literal records and verifies its hash. Small files (up to 1 MiB) are returned
 * with their write still to do, a synchronous one: a handful of syscalls of a few microseconds each,
 * where five thread-pool round trips per file would cost far more (the caller runs them in groups);
 * large ones are streamed to disk as they arrive.
 */
export async function buildNewFile(
  stagedPath: string,
  o: FileOp,
  data: ByteQueue,
  durable: boolean,
): Promise<{ bytes: number; write: (() => void) | null }> {
  const hasher = new ContentHasher();
  let parts: Buffer[] = [];
  let total = 0;
  let fh: FileHandle | null = null;
  let flushing: Promise<void> = Promise.resolve();
  try {
    for (;;) {
      const tag = await data.u8();
      if (tag === FileRecord.Literal) {
        let len = await data.varint();
        while (len > 0) {
          // As the frames' pieces arrived (no copy), up to 1 MiB at a time: one gathered write.
          const pieces = await data.readPiecesUpTo(Math.min(len, 1 << 20));
          let got = 0;
          for (const piece of pieces) {
            hasher.update(piece);
            got += piece.length;
          }
          if (fh) {
            await fh.writev(pieces, total);
            // Start write-back early on big files so the commit's fsync has little left to do.
            if (durable && Math.floor((total + got) / FLUSH_EVERY) > Math.floor(total / FLUSH_EVERY)) {
              const h = fh;
              flushing = flushing.then(() => h.datasync()).catch(() => undefined);
            }
          } else parts.push(...pieces);
          total += got;
          len -= got;
          if (!fh && total > 1 << 20) {
            fh = await open(stagedPath, 'w', 0o600);
            await fh.write(Buffer.concat(parts), 0, total, 0);
            parts = [];
          }
        }
      } else if (tag === FileRecord.End) {
        const expected = (await data.readExact(CONTENT_HASH_BYTES)).toString('hex');
        const actual = hasher.digest();
        if (actual !== expected) throw mismatch(o.path, expected, actual);
        break;
      } else if (tag === FileRecord.Copy) {
        throw new UnderstudyError(ErrorCode.SyncFrame, 'copy record in a file without a delta base', {
          details: { path: o.path },
        });
      } else throw new UnderstudyError(ErrorCode.SyncFrame, `unknown file record ${tag}`);
    }
    const finish = async (h: FileHandle): Promise<void> => {
      await h.chmod(o.mode);
      if (o.mtimeMs > 0) await h.utimes(new Date(o.mtimeMs), new Date(o.mtimeMs));
    };
    if (fh) {
      await flushing;
      await finish(fh);
      return { bytes: total, write: null };
    }
    const content = parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts);
    const write = (): void => {
      const fd = openSync(stagedPath, 'w', 0o600);
      try {
        for (let at = 0; at < content.length;) at += writeSync(fd, content, at, content.length - at, at);
        fchmodSync(fd, o.mode);
        if (o.mtimeMs > 0) futimesSync(fd, o.mtimeMs / 1000, o.mtimeMs / 1000);
      } finally {
        closeSync(fd);
      }
    };
    return { bytes: total, write };
  } finally {
    await fh?.close();
  }
}

/** A file built from a delta: a step to journal and, for a patch, its redo data. */
export interface BuiltFile {
  readonly bytes: number;
  readonly step: JournalStep;
  /** A patch's ranges (`varint count, then varint offset + length-prefixed bytes each`). */
  readonly redo: Buffer | null;
}

/**
 * Builds one file from its records against a delta base in the tree. A delta of a file onto itself
 * that only keeps bytes in place and adds literals (appends, in-place edits, truncation) becomes a
 * patch: its result is verified by hashing base-plus-patch (only the tail for a pure append to a file
 * whose hash state is known), and it is applied in place after commit from redo data in the journal.
 * Anything else is built as a whole new file in staging (`dir`/`name`) and renamed into place.
 */
export async function buildDeltaFile(
  root: string,
  hashes: PatchHashes,
  staging: () => Promise<string>,
  name: string,
  o: FileOp & { base: string },
  data: ByteQueue,
): Promise<BuiltFile> {
  const basePath = join(root, o.base);
  // The base is opened only when its bytes are needed: a pure append to a file whose hash state is
  // known needs just its size and identity (lstat: never follows a link).
  const baseStat = lstatOrNullSync(basePath);
  if (!baseStat?.isFile())
    throw new UnderstudyError(
      ErrorCode.SyncVerify,
      `delta base ${JSON.stringify(o.base)} is missing on the echo`,
      {
        details: { path: o.base },
      },
    );
  const baseSize = baseStat.size;
  let baseHandle: FileHandle | undefined;
  const openBase = async (): Promise<FileHandle> => {
    if (baseHandle) return baseHandle;
    const h = await open(basePath, fsc.O_RDONLY | fsc.O_NOFOLLOW);
    baseHandle = h;
    const st = await h.stat();
    if (st.ino !== baseStat.ino || st.size !== baseSize)
      throw new UnderstudyError(ErrorCode.SyncVerify, 'delta base changed while applying', {
        details: { path: o.base },
      });
    return h;
  };
  let stagedPath = '';
  let patch: { off: number; data: Buffer }[] | null = o.base === o.path ? [] : null;
  let patchBytes = 0;
  let out: FileHandle | null = null;
  let clone = false;
  let hasher: ContentHasher | null = null;
  let pos = 0;
  let written = 0;
  let buf: Buffer | undefined;
  const buffer = (): Buffer => (buf ??= Buffer.allocUnsafe(Math.min(1 << 20, Math.max(4096, baseSize))));
  const toFile = async (): Promise<FileHandle> => {
    if (out) return out;
    stagedPath = join(await staging(), name);
    if (patch) {
      // Leave patch mode: clone the base, then replay what was buffered.
      await copyFile(basePath, stagedPath);
      out = await open(stagedPath, 'r+');
      clone = true;
      for (const r of patch) await out.write(r.data, 0, r.data.length, r.off);
      patch = null;
    } else {
      out = await open(stagedPath, 'w', 0o600);
      hasher = new ContentHasher();
    }
    return out;
  };
  try {
    for (;;) {
      const tag = await data.u8();
      if (tag === FileRecord.Copy) {
        const src = pos + (await data.svarint());
        const len = await data.varint();
        if (src < 0 || src + len > baseSize)
          throw new UnderstudyError(ErrorCode.SyncFrame, 'copy outside the delta base', {
            details: { path: o.path },
          });
        if ((patch || clone) && src === pos) {
          pos += len;
          continue;
        }
        const f = await toFile();
        const base = await openBase();
        const b = buffer();
        let done = 0;
        while (done < len) {
          const n = Math.min(b.length, len - done);
          const { bytesRead } = await base.read(b, 0, n, src + done);
          if (bytesRead !== n)
            throw new UnderstudyError(ErrorCode.SyncVerify, 'delta base shorter than expected', {
              details: { path: o.path },
            });
          await f.write(b, 0, n, pos + done);
          (hasher as ContentHasher | null)?.update(b.subarray(0, n));
          done += n;
        }
        pos += len;
        written += len;
      } else if (tag === FileRecord.Literal) {
        let len = await data.varint();
        while (len > 0) {
          const chunk = await data.readUpTo(len);
          if (patch && patchBytes + chunk.length <= 64 * 1024 * 1024) {
            patch.push({ off: pos, data: Buffer.from(chunk) });
            patchBytes += chunk.length;
          } else {
            const f = await toFile();
            await f.write(chunk, 0, chunk.length, pos);
            (hasher as ContentHasher | null)?.update(chunk);
          }
          pos += chunk.length;
          written += chunk.length;
          len -= chunk.length;
        }
      } else if (tag === FileRecord.End) {
        const expected = (await data.readExact(CONTENT_HASH_BYTES)).toString('hex');
        if (patch) {
          const cached = hashes.lookup(o.path, baseStat);
          const tail =
            patch.length > 0 &&
            (patch[0] as { off: number }).off === baseSize &&
            patch.reduce((e, r) => (r.off === e ? e + r.data.length : -1), baseSize) === pos;
          let extended: ContentHasher;
          if (cached && tail) {
            // Pure append to a file whose hash state we kept: hash only the tail.
            extended = cached.fork();
            for (const r of patch) extended.update(r.data);
          } else extended = await hashPatched(await openBase(), baseSize, patch, pos, buffer());
          const actual = extended.fork().digest();
          if (actual !== expected) throw mismatch(o.path, expected, actual);
          hashes.stage(o.path, extended);
          const w = new ByteWriter(patchBytes + patch.length * 16 + 16).varint(patch.length);
          for (const r of patch) w.varint(r.off).lbytes(r.data);
          const redo = w.finish();
          return {
            bytes: written,
            redo,
            step: {
              k: 'patch',
              path: o.path,
              at: 0,
              len: redo.length,
              size: pos,
              mode: o.mode,
              mtimeMs: o.mtimeMs,
            },
          };
        }
        const f = out ?? (await toFile());
        if (clone) await f.truncate(pos);
        await f.chmod(o.mode);
        await f.close();
        out = null;
        const h = hasher as ContentHasher | null;
        const actual = h ? h.digest() : (await hashFile(stagedPath)).hash;
        if (o.mtimeMs > 0) await utimes(stagedPath, new Date(o.mtimeMs), new Date(o.mtimeMs));
        if (actual !== expected) throw mismatch(o.path, expected, actual);
        return { bytes: written, redo: null, step: { k: 'place', path: o.path, staged: name } };
      } else {
        throw new UnderstudyError(ErrorCode.SyncFrame, `unknown file record ${tag}`);
      }
    }
  } finally {
    await (out as FileHandle | null)?.close().catch(() => undefined);
    await baseHandle?.close();
  }
}
