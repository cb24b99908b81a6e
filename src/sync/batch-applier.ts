import { constants as fsc, type Stats } from 'node:fs';
import { copyFile, lstat, mkdir, open, readdir, readlink, rename, rm, symlink, chmod, utimes, writeFile, readFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { UnderstudyError, ErrorCode } from '../errors/index.js';
import { ContentHasher, CONTENT_HASH_BYTES, hashFile } from './content-hash.js';
import type { BatchOp } from './messages.js';
import { FileRecord } from './file-stream.js';
import type { ByteQueue } from './byte-queue.js';
import { assertSafeRelativePath, parentOf, parentsAreRealDirs, parentsOf, unsafePath } from './path-safety.js';

/** A step of a committed batch, replayed idempotently after a crash. */
type JournalStep =
  | { k: 'delete'; path: string }
  | { k: 'mkdir'; path: string; mode: number }
  | { k: 'place'; path: string; staged: string }
  | { k: 'symlink'; path: string; target: string; staged: string }
  | { k: 'chmod'; path: string; mode: number };

interface Journal {
  lineage: string;
  seq: number;
  steps: JournalStep[];
}

/** Persisted apply position of an echo. */
export interface ApplyState {
  readonly lineage: string;
  readonly lastApplied: number;
}

/** Result of staging one batch. */
export interface StagedBatch {
  readonly seq: number;
  readonly lineage: string;
  readonly steps: JournalStep[];
  readonly files: number;
  readonly bytes: number;
}

async function fsyncPath(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function lstatOrNull(path: string): Promise<Stats | null> {
  try {
    return await lstat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
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

  async #recover(): Promise<void> {
    const dir = join(this.metaDir, 'staging');
    for (const name of await readdir(dir)) {
      const journalPath = join(dir, name, 'journal.json');
      let journal: Journal | undefined;
      try {
        journal = JSON.parse(await readFile(journalPath, 'utf8')) as Journal;
      } catch {
        journal = undefined;
      }
      const newer = journal && (journal.lineage !== this.#state.lineage || journal.seq > this.#state.lastApplied);
      if (journal && newer) await this.#execute(journal);
      await rm(join(dir, name), { recursive: true, force: true });
    }
  }

  /** Records a new lineage (after a reset handshake) without touching the tree. */
  async resetLineage(lineage: string): Promise<void> {
    await this.#writeState({ lineage, lastApplied: 0 });
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
    try {
      const steps = await this.#plan(ops);
      let files = 0;
      let bytes = 0;
      let index = 0;
      const finalSteps: JournalStep[] = [];
      for (const o of ops) {
        if (o.op === 'file') {
          const staged = `f${index++}`;
          bytes += await this.#buildFile(join(dir, staged), o, data);
          files++;
          finalSteps.push({ k: 'place', path: o.path, staged });
        } else if (o.op === 'symlink') {
          const staged = `l${index++}`;
          await symlink(o.target, join(dir, staged));
          finalSteps.push({ k: 'symlink', path: o.path, target: o.target, staged });
        }
      }
      if (!data.drained) throw new UnderstudyError(ErrorCode.SyncFrame, 'batch data longer than its files');
      // Order: deletes, mkdirs (parents first), files and links, then mode changes.
      const ordered = [...steps.filter((s) => s.k === 'delete'), ...steps.filter((s) => s.k === 'mkdir'), ...finalSteps, ...steps.filter((s) => s.k === 'chmod')];
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
    const parentOk = async (path: string): Promise<void> => {
      for (const p of parentsOf(path)) {
        const t = post.get(p);
        if (t === 'dir') continue;
        if (t !== undefined) throw unsafePath(path, `parent ${JSON.stringify(p)} is not a directory in this batch`);
        const st = await lstatOrNull(join(this.root, p));
        if (!st) throw unsafePath(path, `parent ${JSON.stringify(p)} does not exist`);
        if (st.isSymbolicLink()) throw unsafePath(path, `parent ${JSON.stringify(p)} is a symlink`);
        if (!st.isDirectory()) throw unsafePath(path, `parent ${JSON.stringify(p)} is not a directory`);
      }
    };
    for (const o of ops) {
      assertSafeRelativePath(o.path);
      if (o.op === 'delete') {
        post.set(o.path, 'deleted');
        for (const k of post.keys()) if (k.startsWith(o.path + '/')) post.set(k, 'deleted');
        steps.push({ k: 'delete', path: o.path });
      }
    }
    // mkdirs first, in path order so parents precede children.
    const mkdirs = ops.filter((o): o is Extract<BatchOp, { op: 'mkdir' }> => o.op === 'mkdir').sort((a, b) => (a.path < b.path ? -1 : 1));
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
          if (!st) throw new UnderstudyError(ErrorCode.SyncVerify, `delta base ${JSON.stringify(o.base)} is missing on the echo`, { details: { path: o.base } });
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

  /** Builds one file from its records; returns the bytes written. */
  async #buildFile(stagedPath: string, o: Extract<BatchOp, { op: 'file' }>, data: ByteQueue): Promise<number> {
    const basePath = o.base === null ? null : join(this.root, o.base);
    let base: FileHandle | null = null;
    let baseSize = 0;
    if (basePath) {
      base = await open(basePath, fsc.O_RDONLY | fsc.O_NOFOLLOW);
      baseSize = (await base.stat()).size;
    }
    // Large in-place deltas: clone the base and patch only what changed.
    const clone = base !== null && o.base === o.path && baseSize >= 1 << 20;
    if (clone && basePath) await copyFile(basePath, stagedPath);
    const out = await open(stagedPath, clone ? 'r+' : 'w', 0o600);
    let pos = 0;
    let written = 0;
    const hasher = clone ? null : new ContentHasher();
    const buf = Buffer.allocUnsafe(1 << 20);
    try {
      for (;;) {
        const tag = await data.u8();
        if (tag === FileRecord.Copy) {
          const src = pos + (await data.svarint());
          const len = await data.varint();
          if (!base || src < 0 || src + len > baseSize) throw new UnderstudyError(ErrorCode.SyncFrame, 'copy outside the delta base', { details: { path: o.path } });
          if (clone && src === pos) {
            pos += len;
            continue;
          }
          let done = 0;
          while (done < len) {
            const n = Math.min(buf.length, len - done);
            const { bytesRead } = await base.read(buf, 0, n, src + done);
            if (bytesRead !== n) throw new UnderstudyError(ErrorCode.SyncVerify, 'delta base shorter than expected', { details: { path: o.path } });
            await out.write(buf, 0, n, pos + done);
            hasher?.update(buf.subarray(0, n));
            done += n;
          }
          pos += len;
          written += len;
        } else if (tag === FileRecord.Literal) {
          let len = await data.varint();
          while (len > 0) {
            const chunk = await data.readUpTo(len);
            await out.write(chunk, 0, chunk.length, pos);
            hasher?.update(chunk);
            pos += chunk.length;
            written += chunk.length;
            len -= chunk.length;
          }
        } else if (tag === FileRecord.End) {
          const expected = (await data.readExact(CONTENT_HASH_BYTES)).toString('hex');
          if (clone) await out.truncate(pos);
          await out.chmod(o.mode);
          if (this.durable) await out.sync();
          await out.close();
          const actual = hasher ? hasher.digest() : (await hashFile(stagedPath)).hash;
          if (actual !== expected) {
            throw new UnderstudyError(ErrorCode.SyncVerify, `file ${JSON.stringify(o.path)} does not match its source hash after apply`, {
              details: { path: o.path, expected, actual },
            });
          }
          if (o.mtimeMs > 0) await utimes(stagedPath, new Date(o.mtimeMs), new Date(o.mtimeMs));
          return written;
        } else {
          throw new UnderstudyError(ErrorCode.SyncFrame, `unknown file record ${tag}`);
        }
      }
    } finally {
      await out.close().catch(() => undefined);
      await base?.close();
    }
  }

  /** Commits a staged batch: journal, steps, directory fsyncs, applied mark. */
  async commit(staged: StagedBatch): Promise<void> {
    const dir = this.#stagingDir(staged.seq);
    const journal: Journal = { lineage: staged.lineage, seq: staged.seq, steps: staged.steps };
    const tmp = join(dir, 'journal.tmp');
    await writeFile(tmp, JSON.stringify(journal));
    if (this.durable) await fsyncPath(tmp);
    await rename(tmp, join(dir, 'journal.json'));
    if (this.durable) await fsyncPath(dir);
    await this.#execute(journal);
    await rm(dir, { recursive: true, force: true });
  }

  /** Discards a staged batch. */
  async abort(seq: number): Promise<void> {
    await rm(this.#stagingDir(seq), { recursive: true, force: true });
  }

  async #execute(journal: Journal): Promise<void> {
    const dir = this.#stagingDir(journal.seq);
    const touched = new Set<string>();
    const guard = async (path: string): Promise<string> => {
      assertSafeRelativePath(path);
      await parentsAreRealDirs(this.root, path);
      touched.add(parentOf(path));
      return join(this.root, path);
    };
    for (const s of journal.steps) {
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
    if (this.durable) for (const d of touched) await fsyncPath(join(this.root, d)).catch(() => undefined);
    await this.#writeState({ lineage: journal.lineage, lastApplied: journal.seq });
  }
}
