import { join } from 'node:path';
import { ByteWriter } from './byte-codec.js';
import type { ContentPool, PendingSignature } from './content-pool.js';
import type { ContentResult } from './content-job.js';
import { encodeCopy, encodeEnd } from './file-stream.js';
import type { ContentStream } from './file-streamer.js';
import type { BatchOp } from './messages.js';
import { childPath, listDir, readEntry, readEntrySync, type TreeEntry } from './tree-scan.js';
import type { TreeView, ViewEntry } from './tree-view.js';
import { markSignatureShared, type FileSignature } from './signature.js';

/** Context the builder works in. */
export interface BuildContext {
  readonly root: string;
  readonly view: TreeView;
  readonly pool: ContentPool;
  /** Priority rank of a path (lower is sent first). */
  readonly rankOf: (path: string) => number;
  /** Told about every directory seen, so the watcher can watch it. */
  readonly onDir?: (path: string) => void;
  /** Told about every directory found deleted, so the watcher can drop its watches. */
  readonly onDirGone?: (path: string) => void;
  /** Paths never replicated (relative). */
  readonly ignore?: (path: string) => boolean;
  /**
   * New files at least this big, which no file of the view could be a copy of, are sent as they are
   * read ({@link StreamedFile}) instead of read and hashed first. Unset: never.
   */
  readonly streamFrom?: number;
  /** Largest streamed piece (header included): one data frame. @default 1 MiB */
  readonly streamPieceBytes?: number;
}

/** The batch's last file, sent while it is read: its records follow the batch's `data`. */
export interface StreamedFile {
  readonly path: string;
  readonly streamer: ContentStream;
  readonly mode: number;
  readonly mtimeMs: number;
  readonly ino: number;
}

/** Bounds of one batch. */
export interface BuildLimits {
  readonly maxFiles: number;
  readonly maxContentBytes: number;
}

/** A batch ready to send: ops, the data stream, and the view updates it implies. */
export interface BuiltBatch {
  readonly ops: BatchOp[];
  /** Data stream pieces in op order (records and end record per file). */
  readonly data: Buffer[];
  readonly dataBytes: number;
  readonly literalBytes: number;
  readonly files: number;
  /** Bytes of file content the batch makes current on the echo. */
  readonly contentBytes: number;
  /** Paths still dirty (deferred by limits or changed while read). */
  readonly deferred: string[];
  /** A big new file whose records are read while they are sent (its op is the last file op). */
  readonly stream: StreamedFile | null;
}

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

type FileChange = { path: string; cur: Extract<TreeEntry, { type: 'file' }>; old: ViewEntry | undefined };

/**
 * Turns dirty paths into a batch: examines each path (directories recursively when `deep` or new),
 * compares with the echo's view, and computes file content as copies from the echo's own files
 * (renames and duplicates by inode or content hash), deltas against the echo's version, or literals.
 * Applies the implied updates to the view.
 */
export async function buildBatch(
  ctx: BuildContext,
  dirty: Map<string, boolean>,
  limits: BuildLimits,
): Promise<BuiltBatch> {
  const { view, root } = ctx;
  const deletes: string[] = [];
  const mkdirs: { path: string; mode: number }[] = [];
  const links: { path: string; target: string }[] = [];
  const chmods: { path: string; mode: number }[] = [];
  const files: FileChange[] = [];
  const seen = new Set<string>();

  const examine = async (p: string, deep: boolean): Promise<void> => {
    if (seen.has(p)) return;
    seen.add(p);
    if (p !== '' && ctx.ignore?.(p)) return;
    // A path an event named is looked at synchronously; a scan's many entries concurrently.
    const cur = deep ? await readEntry(root, p) : readEntrySync(root, p);
    const old = p === '' ? ({ type: 'dir', mode: 0 } as const) : view.get(p);
    if (cur === null || cur === 'special') {
      if (p !== '' && old) deletes.push(p);
      if (old?.type === 'dir') ctx.onDirGone?.(p);
      return;
    }
    if (cur.type === 'dir') {
      ctx.onDir?.(p);
      const isNew = !old || old.type !== 'dir';
      if (p !== '' && (isNew || old.mode !== cur.mode)) mkdirs.push({ path: p, mode: cur.mode });
      if (deep || isNew) {
        const names = await listDir(root, p);
        const present = new Set(names);
        await eachLimit(names, 16, (name) => examine(childPath(p, name), deep || isNew));
        if (!isNew)
          await eachLimit(
            [...view.children(p)].filter((n) => !present.has(n)),
            16,
            (name) => examine(childPath(p, name), false),
          );
      }
      return;
    }
    if (cur.type === 'symlink') {
      if (!old || old.type !== 'symlink' || old.target !== cur.target)
        links.push({ path: p, target: cur.target });
      return;
    }
    if (
      !old ||
      old.type !== 'file' ||
      old.size !== cur.size ||
      old.mtimeMs !== cur.mtimeMs ||
      old.ino !== cur.ino
    )
      files.push({ path: p, cur, old });
    else if (old.mode !== cur.mode) chmods.push({ path: p, mode: cur.mode });
  };

  await eachLimit(
    [...dirty.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1)),
    32,
    ([p, deep]) => examine(p, deep),
  );
  deletes.sort();

  // Priority order; defer what exceeds the limits (only plain file-to-file changes can wait).
  files.sort((a, b) => ctx.rankOf(a.path) - ctx.rankOf(b.path) || (a.path < b.path ? -1 : 1));
  const chosen: FileChange[] = [];
  const deferred: string[] = [];
  let budget = 0;
  for (const f of files) {
    const deferrable = !f.old || f.old.type === 'file';
    if (
      deferrable &&
      chosen.length > 0 &&
      (chosen.length >= limits.maxFiles || budget + f.cur.size > limits.maxContentBytes)
    ) {
      deferred.push(f.path);
      continue;
    }
    chosen.push(f);
    budget += f.cur.size;
  }

  // Content, a few files at a time.
  const fileOps: { op: BatchOp; pieces: Buffer[]; entry: ViewEntry; literal: number; size: number }[] = [];
  let stream: StreamedFile | null = null;
  let streamClaimed = false;
  /** Sends `f` as a stream if it qualifies (one per batch); false if it does not. */
  const tryStream = async (f: FileChange): Promise<boolean> => {
    if (streamClaimed || ctx.streamFrom === undefined || f.cur.size < ctx.streamFrom) return false;
    if (f.old && f.old.type !== 'file') return false;
    // A file of another size has other content: no rename, duplicate or unchanged file to find.
    if (view.hasFileOfSize(f.cur.size)) return false;
    streamClaimed = true;
    const streamer = await ctx.pool.stream(join(root, f.path), ctx.streamPieceBytes ?? 1 << 20);
    if (!streamer) return false;
    stream = { path: f.path, streamer, mode: f.cur.mode, mtimeMs: f.cur.mtimeMs, ino: f.cur.ino };
    return true;
  };
  const plan = async (f: FileChange): Promise<void> => {
    const oldFile = f.old?.type === 'file' ? f.old : undefined;
    // Rename or hard link: same inode, size and mtime as a file the echo has.
    const byIno = view.pathWithIno(f.cur.ino);
    const inoTwin = byIno !== undefined ? view.get(byIno) : undefined;
    if (
      byIno !== undefined &&
      byIno !== f.path &&
      inoTwin?.type === 'file' &&
      inoTwin.size === f.cur.size &&
      inoTwin.mtimeMs === f.cur.mtimeMs &&
      inoTwin.mtimeMs > 0
    ) {
      fileOps.push(copyOp(f, byIno, inoTwin.hash, inoTwin.sig));
      return;
    }
    let r: ContentResult;
    try {
      const pendingSig = oldFile?.sig;
      if (pendingSig instanceof Promise) (pendingSig as PendingSignature).now?.();
      const baseSig = pendingSig ? await Promise.resolve(pendingSig).catch(() => null) : null;
      if (baseSig === null && (await tryStream(f))) return;
      r = await ctx.pool.diff(join(root, f.path), f.cur.size, baseSig);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'EISDIR' || code === 'ENOTDIR') {
        deferred.push(f.path);
        return;
      }
      throw err;
    }
    const entry: ViewEntry = {
      type: 'file',
      mode: f.cur.mode,
      size: r.size,
      mtimeMs: f.cur.mtimeMs,
      ino: f.cur.ino,
      hash: r.hash,
      sig: r.signature,
    };
    if (oldFile && oldFile.hash === r.hash) {
      // Same content (e.g. touched, or known from a manifest): no transfer.
      fileOps.push({
        op: { op: 'chmod', path: f.path, mode: f.cur.mode },
        pieces: [],
        entry,
        literal: 0,
        size: 0,
      });
      return;
    }
    const twin = view.pathWithHash(r.hash);
    if (twin !== undefined && r.size > 0) {
      fileOps.push(copyOp(f, twin, r.hash, r.signature, r.size));
      return;
    }
    const w = new ByteWriter(32);
    encodeEnd(w, r.hash);
    const useBase = oldFile?.sig && r.literalBytes < r.size ? f.path : null;
    fileOps.push({
      op: { op: 'file', path: f.path, mode: f.cur.mode, mtimeMs: f.cur.mtimeMs, base: useBase },
      pieces: [...r.records, w.finish()],
      entry,
      literal: r.literalBytes,
      size: r.size,
    });
  };
  const copyOp = (
    f: FileChange,
    from: string,
    hash: string,
    sig: FileSignature | Promise<FileSignature> | null,
    size = f.cur.size,
  ) => {
    const w = new ByteWriter(40);
    if (size > 0) encodeCopy(w, 0, 0, size);
    encodeEnd(w, hash);
    // Two paths now hold the same signature: neither may extend it in place.
    if (sig instanceof Promise) sig.then(markSignatureShared, () => undefined);
    else if (sig) markSignatureShared(sig);
    return {
      op: { op: 'file', path: f.path, mode: f.cur.mode, mtimeMs: f.cur.mtimeMs, base: from } as BatchOp,
      pieces: [w.finish()],
      entry: {
        type: 'file',
        mode: f.cur.mode,
        size,
        mtimeMs: f.cur.mtimeMs,
        ino: f.cur.ino,
        hash,
        sig,
      } as ViewEntry,
      literal: 0,
      size,
    };
  };
  const order = new Map(chosen.map((f, i) => [f.path, i]));
  for (let i = 0; i < chosen.length; i += 16) await Promise.all(chosen.slice(i, i + 16).map(plan));
  fileOps.sort((a, b) => (order.get(a.op.path) ?? 0) - (order.get(b.op.path) ?? 0));

  // Assemble ops in the echo's apply order and update the view.
  const ops: BatchOp[] = [];
  for (const p of deletes) {
    ops.push({ op: 'delete', path: p });
    view.delete(p);
  }
  mkdirs.sort((a, b) => (a.path < b.path ? -1 : 1));
  for (const m of mkdirs) {
    ops.push({ op: 'mkdir', path: m.path, mode: m.mode });
    view.set(m.path, { type: 'dir', mode: m.mode });
  }
  const data: Buffer[] = [];
  let dataBytes = 0;
  let literalBytes = 0;
  let contentBytes = 0;
  let fileCount = 0;
  for (const f of fileOps) {
    if (f.op.op === 'file') {
      ops.push(f.op);
      for (const p of f.pieces) {
        data.push(p);
        dataBytes += p.length;
      }
      literalBytes += f.literal;
      contentBytes += f.size;
      fileCount++;
    } else if (f.entry.type === 'file') {
      const before = view.get(f.op.path);
      if (before?.type === 'file' && before.mode !== f.entry.mode) ops.push(f.op);
    }
    view.set(f.op.path, f.entry);
  }
  const streamed = stream as StreamedFile | null;
  if (streamed) {
    // Its view entry is set once it has been read and sent (its hash is known only then).
    ops.push({ op: 'file', path: streamed.path, mode: streamed.mode, mtimeMs: streamed.mtimeMs, base: null });
    contentBytes += streamed.streamer.size;
    fileCount++;
  }
  for (const l of links) {
    ops.push({ op: 'symlink', path: l.path, target: l.target });
    view.set(l.path, { type: 'symlink', target: l.target });
  }
  for (const c of chmods) {
    ops.push({ op: 'chmod', path: c.path, mode: c.mode });
    const e = view.get(c.path);
    if (e?.type === 'file') view.set(c.path, { ...e, mode: c.mode });
  }
  return { ops, data, dataBytes, literalBytes, files: fileCount, contentBytes, deferred, stream: streamed };
}
