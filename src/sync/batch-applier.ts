import { constants as fsc, type Stats } from 'node:fs';
import {
  copyFile,
  mkdir,
  open,
  readdir,
  readlink,
  rename,
  rm,
  symlink,
  chmod,
  utimes,
  writeFile,
  readFile,
  type FileHandle,
} from 'node:fs/promises';
import { join } from 'node:path';
import { UnderstudyError, ErrorCode } from '../errors/index.js';
import { ContentHasher, CONTENT_HASH_BYTES, hashFile } from './content-hash.js';
import type { BatchOp } from './messages.js';
import { FileRecord } from './file-stream.js';
import { ByteReader, ByteWriter } from './byte-codec.js';
import type { ByteQueue } from './byte-queue.js';
import {
  assertSafeRelativePath,
  parentOf,
  parentsAreRealDirs,
  parentsOf,
  unsafePath,
} from './path-safety.js';
import {
  decodeJournal,
  encodeJournal,
  fsyncAll,
  fsyncPath,
  hashPatched,
  lstatOrNull,
  SLOTS,
  syncFilesystem,
  type Journal,
  type JournalStep,
} from './apply-io.js';

/** Persisted apply position of an echo. */
export interface ApplyState {
  readonly lineage: string;
  readonly lastApplied: number;
  /** Incremented by every lineage reset; orders state.json against journal slots. */
  readonly gen?: number;
}

/** Result of staging one batch. */
export interface StagedBatch {
  readonly seq: number;
  readonly lineage: string;
  readonly steps: JournalStep[];
  readonly files: number;
  readonly bytes: number;
}

/**
 * Applies batches into an echo's state directory atomically through a journal in `metaDir`:
 * every file is built and verified in a staging directory first, then a journal record is committed,
 * then the steps run (idempotent renames, deletes, mkdirs), then the batch is marked applied.
 * On `create`, a committed journal is rolled forward and uncommitted staging is discarded, so the tree
 * always equals the state after the last fully applied batch.
 */
export class BatchApplier {
  #state: ApplyState;
  private constructor(
    readonly root: string,
    readonly metaDir: string,
    readonly durable: boolean,
    state: ApplyState,
  ) {
    this.#state = state;
  }

  static async create(root: string, metaDir: string, durable: boolean): Promise<BatchApplier> {
    await mkdir(root, { recursive: true });
    await mkdir(join(metaDir, 'staging'), { recursive: true });
    let state: ApplyState = { lineage: '', lastApplied: 0 };
    try {
      state = JSON.parse(await readFile(join(metaDir, 'state.json'), 'utf8')) as ApplyState;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    const a = new BatchApplier(root, metaDir, durable, state);
    await a.#recover();
    return a;
  }

  get state(): ApplyState {
    return this.#state;
  }

  #stagingDir(seq: number): string {
    return join(this.metaDir, 'staging', String(seq));
  }

  /**
   * Crash recovery. The two journal slots hold the last two committed batches; the newest valid one
   * is re-run (every step is idempotent), which completes a batch interrupted mid-apply. The one before
   * it was made durable before the newest was written. Staging of uncommitted batches is discarded.
   */
  async #recover(): Promise<void> {
    const journals: Journal[] = [];
    for (const slot of SLOTS) {
      try {
        const j = decodeJournal(await readFile(join(this.metaDir, slot)));
        if (j && j.gen === (this.#state.gen ?? 0)) journals.push(j);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
    journals.sort((x, y) => x.seq - y.seq);
    for (const j of journals.slice(-1)) {
      await this.#execute(j);
      this.#state = { lineage: j.lineage, lastApplied: j.seq, gen: j.gen };
    }
    if (this.durable) await fsyncAll([...this.#deferred], true);
    this.#deferred.clear();
    const dir = join(this.metaDir, 'staging');
    for (const name of await readdir(dir)) await rm(join(dir, name), { recursive: true, force: true });
  }

  /** Hash state at the end of recently appended files (by path), so the next append hashes only its tail. */
  readonly #hashes = new Map<string, { size: number; ino: number; mtimeMs: number; state: ContentHasher }>();
  readonly #pendingHashes = new Map<string, ContentHasher>();

  /** Paths whose fsync is deferred until the next commit (their batch's journal covers them until then). */
  readonly #deferred = new Set<string>();

  /** Records a new lineage (after a reset handshake) without touching the tree. */
  async resetLineage(lineage: string): Promise<void> {
    if (this.durable) await fsyncAll([...this.#deferred], true);
    this.#deferred.clear();
    await this.#writeState({ lineage, lastApplied: 0, gen: (this.#state.gen ?? 0) + 1 });
    for (const slot of SLOTS) await rm(join(this.metaDir, slot), { force: true });
  }

  async #writeState(state: ApplyState): Promise<void> {
    const tmp = join(this.metaDir, 'state.json.tmp');
    await writeFile(tmp, JSON.stringify(state));
    if (this.durable) await fsyncPath(tmp);
    await rename(tmp, join(this.metaDir, 'state.json'));
    if (this.durable) await fsyncPath(this.metaDir);
    this.#state = state;
  }

  /**
   * Validates the batch's paths against the tree and its own effects, then builds every file from the
   * data stream into staging and verifies its hash. Nothing in the tree changes. Throws
   * `UNDERSTUDY_ERR_SYNC_PATH`, `_SYNC_FRAME` or `_SYNC_VERIFY`; the staging directory is then removed.
   */
  async stage(lineage: string, seq: number, ops: readonly BatchOp[], data: ByteQueue): Promise<StagedBatch> {
    const dir = this.#stagingDir(seq);
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    this.#pendingHashes.clear();
    try {
      const steps = await this.#plan(ops);
      let files = 0;
      let bytes = 0;
      let index = 0;
      const finalSteps: JournalStep[] = [];
      let pending: Promise<void>[] = [];
      for (const o of ops) {
        if (o.op === 'file' && o.base === null) {
          // New content: parsed and verified in order, written in the background (64 at a time).
          const staged = `f${index++}`;
          const built = await this.#buildNew(join(dir, staged), o, data);
          bytes += built.bytes;
          files++;
          finalSteps.push({ k: 'place', path: o.path, staged });
          if (built.write) pending.push(built.write);
          if (pending.length >= 64) {
            await Promise.all(pending);
            pending = [];
          }
        } else if (o.op === 'file') {
          const staged = `f${index++}`;
          const built = await this.#buildFile(dir, staged, o, data);
          bytes += built.bytes;
          files++;
          finalSteps.push(built.step);
        } else if (o.op === 'symlink') {
          const staged = `l${index++}`;
          await symlink(o.target, join(dir, staged));
          finalSteps.push({ k: 'symlink', path: o.path, target: o.target, staged });
        }
      }
      await Promise.all(pending);
      await data.expectEnd();
      // Order: deletes, mkdirs (parents first), files and links, then mode changes.
      const ordered = [
        ...steps.filter((s) => s.k === 'delete'),
        ...steps.filter((s) => s.k === 'mkdir'),
        ...finalSteps,
        ...steps.filter((s) => s.k === 'chmod'),
      ];
      return { seq, lineage, steps: ordered, files, bytes };
    } catch (err) {
      await rm(dir, { recursive: true, force: true });
      throw err;
    }
  }

  /** Path checks for the whole batch, simulating its effect on parents. Returns delete/mkdir/chmod steps. */
  async #plan(ops: readonly BatchOp[]): Promise<JournalStep[]> {
    const post = new Map<string, 'dir' | 'file' | 'symlink' | 'deleted'>();
    const steps: JournalStep[] = [];
    const statCache = new Map<string, Promise<Stats | null>>();
    const cachedStat = (p: string): Promise<Stats | null> => {
      let st = statCache.get(p);
      if (!st) statCache.set(p, (st = lstatOrNull(join(this.root, p))));
      return st;
    };
    const parentOk = async (path: string): Promise<void> => {
      for (const p of parentsOf(path)) {
        const t = post.get(p);
        if (t === 'dir') continue;
        if (t !== undefined)
          throw unsafePath(path, `parent ${JSON.stringify(p)} is not a directory in this batch`);
        const st = await cachedStat(p);
        if (!st) throw unsafePath(path, `parent ${JSON.stringify(p)} does not exist`);
        if (st.isSymbolicLink()) throw unsafePath(path, `parent ${JSON.stringify(p)} is a symlink`);
        if (!st.isDirectory()) throw unsafePath(path, `parent ${JSON.stringify(p)} is not a directory`);
      }
    };
    for (const o of ops) {
      assertSafeRelativePath(o.path);
      if (o.op === 'delete') {
        post.set(o.path, 'deleted');
        steps.push({ k: 'delete', path: o.path });
      }
    }
    // mkdirs first, in path order so parents precede children.
    const mkdirs = ops
      .filter((o): o is Extract<BatchOp, { op: 'mkdir' }> => o.op === 'mkdir')
      .sort((a, b) => (a.path < b.path ? -1 : 1));
    for (const o of mkdirs) {
      await parentOk(o.path);
      post.set(o.path, 'dir');
      steps.push({ k: 'mkdir', path: o.path, mode: o.mode });
    }
    for (const o of ops) {
      if (o.op === 'file' || o.op === 'symlink') {
        await parentOk(o.path);
        if (o.op === 'file' && o.base !== null) {
          assertSafeRelativePath(o.base);
          await parentsAreRealDirs(this.root, o.base);
          const st = await lstatOrNull(join(this.root, o.base));
          if (!st)
            throw new UnderstudyError(
              ErrorCode.SyncVerify,
              `delta base ${JSON.stringify(o.base)} is missing on the echo`,
              { details: { path: o.base } },
            );
          if (!st.isFile()) throw unsafePath(o.base, 'delta base is not a regular file');
        }
        post.set(o.path, o.op);
      } else if (o.op === 'chmod') {
        await parentOk(o.path);
        steps.push({ k: 'chmod', path: o.path, mode: o.mode });
      }
    }
    return steps;
  }

  /**
   * Reads a new file's literal records and verifies its hash. Small files are returned with a
   * pending write so many can be written concurrently; large ones are streamed to disk.
   */
  async #buildNew(
    stagedPath: string,
    o: Extract<BatchOp, { op: 'file' }>,
    data: ByteQueue,
  ): Promise<{ bytes: number; write: Promise<void> | null }> {
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
            const chunk = await data.readUpTo(len);
            hasher.update(chunk);
            if (fh) {
              await fh.write(chunk, 0, chunk.length, total);
              // Start write-back early on big files so the commit's fsync has little left to do.
              if (
                this.durable &&
                Math.floor((total + chunk.length) / (32 << 20)) > Math.floor(total / (32 << 20))
              ) {
                const h = fh;
                flushing = flushing.then(() => h.datasync()).catch(() => undefined);
              }
            } else parts.push(chunk);
            total += chunk.length;
            len -= chunk.length;
            if (!fh && total > 1 << 20) {
              fh = await open(stagedPath, 'w', 0o600);
              await fh.write(Buffer.concat(parts), 0, total, 0);
              parts = [];
            }
          }
        } else if (tag === FileRecord.End) {
          const expected = (await data.readExact(CONTENT_HASH_BYTES)).toString('hex');
          const actual = hasher.digest();
          if (actual !== expected) {
            throw new UnderstudyError(
              ErrorCode.SyncVerify,
              `file ${JSON.stringify(o.path)} does not match its source hash after apply`,
              { details: { path: o.path, expected, actual } },
            );
          }
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
      const write = (async () => {
        const h = await open(stagedPath, 'w', 0o600);
        try {
          await h.write(content, 0, content.length, 0);
          await finish(h);
        } finally {
          await h.close();
        }
      })();
      write.catch(() => undefined); // awaited by the caller; avoid an unhandled rejection meanwhile
      return { bytes: total, write };
    } finally {
      await fh?.close();
    }
  }

  /**
   * Builds one file from its records. A delta of a file onto itself that only keeps bytes in place and
   * adds literals (appends, in-place edits, truncation) becomes a patch: its result is verified by
   * hashing base-plus-patch, and it is applied in place after commit (redo data in the journal).
   * Anything else is built as a whole new file in staging and renamed into place.
   */
  async #buildFile(
    dir: string,
    name: string,
    o: Extract<BatchOp, { op: 'file' }>,
    data: ByteQueue,
  ): Promise<{ bytes: number; step: JournalStep }> {
    const stagedPath = join(dir, name);
    const basePath = o.base === null ? null : join(this.root, o.base);
    let base: FileHandle | null = null;
    let baseSize = 0;
    if (basePath) {
      base = await open(basePath, fsc.O_RDONLY | fsc.O_NOFOLLOW);
      baseSize = (await base.stat()).size;
    }
    let patch: { off: number; data: Buffer }[] | null = base !== null && o.base === o.path ? [] : null;
    let patchBytes = 0;
    let out: FileHandle | null = null;
    let clone = false;
    let hasher: ContentHasher | null = null;
    let pos = 0;
    let written = 0;
    const buf = Buffer.allocUnsafe(Math.min(1 << 20, Math.max(4096, baseSize)));
    const toFile = async (): Promise<FileHandle> => {
      if (out) return out;
      if (patch && basePath) {
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
          if (!base || src < 0 || src + len > baseSize)
            throw new UnderstudyError(ErrorCode.SyncFrame, 'copy outside the delta base', {
              details: { path: o.path },
            });
          if ((patch || clone) && src === pos) {
            pos += len;
            continue;
          }
          const f = await toFile();
          let done = 0;
          while (done < len) {
            const n = Math.min(buf.length, len - done);
            const { bytesRead } = await base.read(buf, 0, n, src + done);
            if (bytesRead !== n)
              throw new UnderstudyError(ErrorCode.SyncVerify, 'delta base shorter than expected', {
                details: { path: o.path },
              });
            await f.write(buf, 0, n, pos + done);
            (hasher as ContentHasher | null)?.update(buf.subarray(0, n));
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
          let actual: string;
          let step: JournalStep;
          if (patch && base) {
            const bst = await base.stat();
            const cached = this.#hashes.get(o.path);
            const tail =
              patch.length > 0 &&
              (patch[0] as { off: number }).off === baseSize &&
              patch.reduce((e, r) => (r.off === e ? e + r.data.length : -1), baseSize) === pos;
            let extended: ContentHasher | undefined;
            if (
              cached &&
              tail &&
              cached.size === baseSize &&
              cached.ino === bst.ino &&
              cached.mtimeMs === bst.mtimeMs
            ) {
              // Pure append to a file whose hash state we kept: hash only the tail.
              extended = cached.state.fork();
              for (const r of patch) extended.update(r.data);
              actual = extended.fork().digest();
            } else {
              extended = await hashPatched(base, baseSize, patch, pos, buf);
              actual = extended.fork().digest();
            }
            this.#pendingHashes.set(o.path, extended);
            const w = new ByteWriter(patchBytes + patch.length * 16 + 16).varint(patch.length);
            for (const r of patch) w.varint(r.off).lbytes(r.data);
            await writeFile(stagedPath, w.finish());
            step = { k: 'patch', path: o.path, staged: name, size: pos, mode: o.mode, mtimeMs: o.mtimeMs };
          } else {
            const f = out ?? (await toFile());
            if (clone) await f.truncate(pos);
            await f.chmod(o.mode);
            await f.close();
            out = null;
            const h = hasher as ContentHasher | null;
            actual = h ? h.digest() : (await hashFile(stagedPath)).hash;
            if (o.mtimeMs > 0) await utimes(stagedPath, new Date(o.mtimeMs), new Date(o.mtimeMs));
            step = { k: 'place', path: o.path, staged: name };
          }
          if (actual !== expected) {
            throw new UnderstudyError(
              ErrorCode.SyncVerify,
              `file ${JSON.stringify(o.path)} does not match its source hash after apply`,
              {
                details: { path: o.path, expected, actual },
              },
            );
          }
          return { bytes: written, step };
        } else {
          throw new UnderstudyError(ErrorCode.SyncFrame, `unknown file record ${tag}`);
        }
      }
    } finally {
      await (out as FileHandle | null)?.close().catch(() => undefined);
      await base?.close();
    }
  }

  /**
   * Commits a staged batch: makes its staged files and the previous batch's effects durable, writes
   * the journal record (the commit point), then runs the steps. The effects are fsynced at the next
   * commit; until then the journal replays them after a crash.
   */
  async commit(staged: StagedBatch): Promise<void> {
    const dir = this.#stagingDir(staged.seq);
    const journal: Journal = {
      gen: this.#state.gen ?? 0,
      lineage: staged.lineage,
      seq: staged.seq,
      steps: staged.steps,
    };
    if (this.durable) {
      // One concurrent round (the filesystem groups the flushes): this batch's staged content and
      // the previous batch's effects must be durable before this journal record exists.
      const content = staged.steps
        .filter((st) => st.k === 'place' || st.k === 'patch')
        .map((st) => join(dir, (st as { staged: string }).staged));
      // Many files: one syncfs(2) (`sync -f`) beats thousands of fsyncs; else fsync each.
      if (content.length + this.#deferred.size <= 64 || !(await syncFilesystem(this.metaDir))) {
        await Promise.all([fsyncAll(content), fsyncAll([...this.#deferred], true)]);
      }
      this.#deferred.clear();
    }
    const fh = await open(join(this.metaDir, SLOTS[staged.seq % 2] as string), 'w');
    try {
      await fh.writeFile(encodeJournal(journal));
      if (this.durable) await fh.sync();
    } finally {
      await fh.close();
    }
    await this.#execute(journal);
    this.#state = { lineage: journal.lineage, lastApplied: journal.seq, gen: journal.gen };
    await rm(dir, { recursive: true, force: true });
  }

  /** Discards a staged batch. */
  async abort(seq: number): Promise<void> {
    await rm(this.#stagingDir(seq), { recursive: true, force: true });
  }

  async #execute(journal: Journal): Promise<void> {
    const dir = this.#stagingDir(journal.seq);
    const touched = new Set<string>();
    // Directories verified as real (not symlinks) in the current phase; reset between phases.
    let verified = new Map<string, Promise<void>>();
    const checkParents = async (path: string): Promise<void> => {
      for (const p of parentsOf(path)) {
        let v = verified.get(p);
        if (!v) {
          v = lstatOrNull(join(this.root, p)).then((st) => {
            if (st?.isSymbolicLink()) throw unsafePath(path, `parent ${JSON.stringify(p)} is a symlink`);
            if (st && !st.isDirectory())
              throw unsafePath(path, `parent ${JSON.stringify(p)} is not a directory`);
          });
          verified.set(p, v);
        }
        await v;
      }
    };
    const guard = async (path: string): Promise<string> => {
      assertSafeRelativePath(path);
      await checkParents(path);
      touched.add(parentOf(path));
      return join(this.root, path);
    };
    // Phases in journal order; within a phase steps are independent and run 32 at a time,
    // except mkdirs, which run in order (parents first).
    const phases: JournalStep[][] = [];
    let last = '';
    for (const st of journal.steps) {
      const kind =
        st.k === 'delete' ? 'delete' : st.k === 'mkdir' ? 'mkdir' : st.k === 'chmod' ? 'chmod' : 'final';
      if (kind !== last || kind === 'mkdir') phases.push([]);
      (phases[phases.length - 1] as JournalStep[]).push(st);
      last = kind;
    }
    for (const phase of phases) {
      verified = new Map();
      for (let i = 0; i < phase.length; i += 32)
        await Promise.all(phase.slice(i, i + 32).map((st) => this.#step(st, dir, guard)));
    }
    for (const d of touched) this.#deferred.add(join(this.root, d));
  }

  async #step(s: JournalStep, dir: string, guard: (path: string) => Promise<string>): Promise<void> {
    {
      const abs = await guard(s.path);
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
          const stagedPath = join(dir, s.staged);
          if (!(await lstatOrNull(stagedPath))) break; // placed before a crash
          const st = await lstatOrNull(abs);
          if (st?.isDirectory()) await rm(abs, { recursive: true, force: true });
          await rename(stagedPath, abs);
          break;
        }
        case 'patch': {
          if (!(await lstatOrNull(join(dir, s.staged)))) break; // applied before a crash
          const fh = await open(abs, fsc.O_RDWR | fsc.O_NOFOLLOW);
          try {
            const r = new ByteReader(await readFile(join(dir, s.staged)));
            const n = r.varint();
            for (let i = 0; i < n; i++) {
              const off = r.varint();
              const d = r.lbytes();
              await fh.write(d, 0, d.length, off);
            }
            await fh.truncate(s.size);
            await fh.chmod(s.mode);
            if (s.mtimeMs > 0) await fh.utimes(new Date(s.mtimeMs), new Date(s.mtimeMs));
            const state = this.#pendingHashes.get(s.path);
            this.#pendingHashes.delete(s.path);
            if (state) {
              const st = await fh.stat();
              this.#hashes.delete(s.path);
              this.#hashes.set(s.path, { size: st.size, ino: st.ino, mtimeMs: st.mtimeMs, state });
              if (this.#hashes.size > 1024) this.#hashes.delete(this.#hashes.keys().next().value as string);
            }
          } finally {
            await fh.close();
          }
          this.#deferred.add(abs);
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
  }
}
