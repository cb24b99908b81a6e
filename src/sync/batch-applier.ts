import { constants as fsc, writeSync, type Stats } from 'node:fs';
import {
  mkdir,
  open,
  readdir,
  rename,
  rm,
  symlink,
  writeFile,
  readFile,
  type FileHandle,
} from 'node:fs/promises';
import { join } from 'node:path';
import { UnderstudyError, ErrorCode } from '../errors/index.js';
import type { BatchOp } from './messages.js';
import type { ByteQueue } from './byte-queue.js';
import { assertSafeRelativePath, parentsAreRealDirsSync, parentsOf, unsafePath } from './path-safety.js';
import {
  decodeJournal,
  encodeJournal,
  fsyncAll,
  fsyncPath,
  lstatOrNullSync,
  SLOTS,
  syncFilesystem,
  type Journal,
  type JournalStep,
} from './apply-io.js';
import { buildDeltaFile, buildNewFile, PatchHashes } from './file-builder.js';
import { runJournal } from './journal-runner.js';

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
  /** Redo data of the batch's patches, in step order (the journal record's binary section). */
  readonly redo: Buffer[];
  readonly files: number;
  readonly bytes: number;
  /** Whether a staging directory was created for the batch. */
  readonly staged: boolean;
}

/** Size each journal slot file is preallocated to (a record written over it leaves its size as is). */
const JOURNAL_PREALLOC_BYTES = 1 << 20;

/** Replayable batches whose effects are flushed together (and carried by the records meanwhile). */
const FLUSH_GROUP = 8;
/** ...or fewer, once their redo data reaches this size. */
const FLUSH_GROUP_BYTES = 256 * 1024;
/** ...or once no commit came for this long. */
const FLUSH_IDLE_MS = 10;
/**
 * Most batches and redo bytes one record carries: while a flush is slow (a disk stall), appends keep
 * committing with one fsync each until this much waits; only then does a commit wait for the flush.
 */
const MAX_CARRIED = 1024;
const MAX_CARRIED_BYTES = 1 << 20;

/** A committed batch whose effects (paths) are being made durable. */
interface Unflushed {
  readonly paths: string[];
  /** Its steps when they are only patches and mode changes (replayable in a later record), else null. */
  readonly steps: JournalStep[] | null;
  /** Redo data its patch steps point into. */
  readonly redo: Buffer;
  flush?: Promise<void>;
  done: boolean;
}

/**
 * Applies batches into an echo's state directory atomically through a journal in `metaDir`:
 * every file is built and verified first (new content in a staging directory, in-place patches as redo
 * data), then a journal record is committed, then the steps run (idempotent renames, patches, deletes,
 * mkdirs), then the batch is marked applied. On `create`, a committed journal is rolled forward and
 * uncommitted staging is discarded, so the tree always equals the state after the last fully applied
 * batch.
 */
export class BatchApplier {
  #state: ApplyState;
  readonly #hashes = new PatchHashes();
  /** Committed batches whose effects are being fsynced in the background, oldest first. */
  #unflushed: Unflushed[] = [];
  #flushTimer: NodeJS.Timeout | undefined;
  /** Journal slot files kept open (written in place, then fdatasync'd). */
  readonly #slots: (FileHandle | undefined)[] = [undefined, undefined];

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
    // The journal holds file contents in transit: owner-only, like the data directory.
    await mkdir(metaDir, { recursive: true, mode: 0o700 });
    await mkdir(join(metaDir, 'staging'), { recursive: true, mode: 0o700 });
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
   * is re-run (every step is idempotent, and carried patches of earlier batches replay in order), which
   * completes a batch interrupted mid-apply. Whatever the one before it did is durable or carried by
   * the newest. Staging of uncommitted batches is discarded.
   */
  async #recover(): Promise<void> {
    const records: NonNullable<ReturnType<typeof decodeJournal>>[] = [];
    for (const slot of SLOTS) {
      try {
        const r = decodeJournal(await readFile(join(this.metaDir, slot)));
        if (r && r.journal.gen === (this.#state.gen ?? 0)) records.push(r);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
    records.sort((x, y) => x.journal.seq - y.journal.seq);
    for (const { journal: j, redo } of records.slice(-1)) {
      const effects = await runJournal(this.root, j, redo, this.#stagingDir(j.seq), this.#hashes);
      if (this.durable) await fsyncAll([...effects], true);
      this.#state = { lineage: j.lineage, lastApplied: j.seq, gen: j.gen };
    }
    const dir = join(this.metaDir, 'staging');
    for (const name of await readdir(dir)) await rm(join(dir, name), { recursive: true, force: true });
  }

  /** Starts the fsync of every committed batch's effects not yet under way, as one group. */
  #startFlushes(): void {
    clearTimeout(this.#flushTimer);
    const group = this.#unflushed.filter((u) => !u.flush);
    if (group.length === 0) return;
    const paths = [...new Set(group.flatMap((u) => u.paths))];
    // Retried once at once; a second failure surfaces when the next commit waits for it.
    const flush = fsyncAll(paths, true)
      .catch(() => fsyncAll(paths, true))
      .then(() => {
        for (const u of group) u.done = true;
      });
    flush.catch(() => undefined);
    for (const u of group) u.flush = flush;
  }

  /** Waits until every committed batch's effects are durable. */
  async #flushEffects(): Promise<void> {
    this.#startFlushes();
    await Promise.all(this.#unflushed.map((u) => u.flush));
    this.#unflushed = [];
  }

  /** Records a new lineage (after a reset handshake) without touching the tree. */
  async resetLineage(lineage: string): Promise<void> {
    await this.#flushEffects();
    await this.#writeState({ lineage, lastApplied: 0, gen: (this.#state.gen ?? 0) + 1 });
    await this.#closeSlots();
    for (const slot of SLOTS) await rm(join(this.metaDir, slot), { force: true });
  }

  async #writeState(state: ApplyState): Promise<void> {
    const tmp = join(this.metaDir, 'state.json.tmp');
    await writeFile(tmp, JSON.stringify(state), { mode: 0o600 });
    if (this.durable) await fsyncPath(tmp);
    await rename(tmp, join(this.metaDir, 'state.json'));
    if (this.durable) await fsyncPath(this.metaDir);
    this.#state = state;
  }

  /**
   * Validates the batch's paths against the tree and its own effects, then builds every file from the
   * data stream (into staging, or as patch redo data) and verifies its hash. Nothing in the tree
   * changes. Throws `UNDERSTUDY_ERR_SYNC_PATH`, `_SYNC_FRAME` or `_SYNC_VERIFY`; staging is then removed.
   */
  async stage(lineage: string, seq: number, ops: readonly BatchOp[], data: ByteQueue): Promise<StagedBatch> {
    const dir = this.#stagingDir(seq);
    // Created on first use: a batch of patches and metadata needs no staging directory.
    let made: Promise<string> | undefined;
    const staging = (): Promise<string> =>
      (made ??= rm(dir, { recursive: true, force: true })
        .then(() => mkdir(dir, { recursive: true }))
        .then(() => dir));
    this.#hashes.clearStaged();
    let pending: (() => void)[] = [];
    const writePending = (): void => {
      for (const w of pending) w();
      pending = [];
    };
    try {
      const steps = this.#plan(ops);
      let files = 0;
      let bytes = 0;
      let index = 0;
      let redoBytes = 0;
      const redo: Buffer[] = [];
      const finalSteps: JournalStep[] = [];
      for (const o of ops) {
        if (o.op === 'file' && o.base === null) {
          // New content: parsed and verified in order; small files written in groups of 64.
          const staged = `f${index++}`;
          const built = await buildNewFile(join(await staging(), staged), o, data, this.durable);
          bytes += built.bytes;
          files++;
          finalSteps.push({ k: 'place', path: o.path, staged });
          if (built.write) pending.push(built.write);
          if (pending.length >= 64) writePending();
        } else if (o.op === 'file' && o.base !== null) {
          const built = await buildDeltaFile(
            this.root,
            this.#hashes,
            staging,
            `f${index++}`,
            { ...o, base: o.base },
            data,
          );
          bytes += built.bytes;
          files++;
          if (built.redo && built.step.k === 'patch') {
            finalSteps.push({ ...built.step, at: redoBytes });
            redo.push(built.redo);
            redoBytes += built.redo.length;
          } else finalSteps.push(built.step);
        } else if (o.op === 'symlink') {
          const staged = `l${index++}`;
          await symlink(o.target, join(await staging(), staged));
          finalSteps.push({ k: 'symlink', path: o.path, target: o.target, staged });
        }
      }
      writePending();
      await data.expectEnd();
      // Order: deletes, mkdirs (parents first), files and links, then mode changes.
      const ordered = [
        ...steps.filter((s) => s.k === 'delete'),
        ...steps.filter((s) => s.k === 'mkdir'),
        ...finalSteps,
        ...steps.filter((s) => s.k === 'chmod'),
      ];
      return { seq, lineage, steps: ordered, redo, files, bytes, staged: made !== undefined };
    } catch (err) {
      if (made) await made.then(() => rm(dir, { recursive: true, force: true })).catch(() => undefined);
      throw err;
    }
  }

  /** Path checks for the whole batch, simulating its effect on parents. Returns delete/mkdir/chmod steps. */
  #plan(ops: readonly BatchOp[]): JournalStep[] {
    const post = new Map<string, 'dir' | 'file' | 'symlink' | 'deleted'>();
    const steps: JournalStep[] = [];
    // Metadata lookups only, each a few microseconds: synchronous, no thread-pool round trips.
    const statCache = new Map<string, Stats | null>();
    const cachedStat = (p: string): Stats | null => {
      let st = statCache.get(p);
      if (st === undefined) statCache.set(p, (st = lstatOrNullSync(join(this.root, p))));
      return st;
    };
    const parentOk = (path: string): void => {
      for (const p of parentsOf(path)) {
        const t = post.get(p);
        if (t === 'dir') continue;
        if (t !== undefined)
          throw unsafePath(path, `parent ${JSON.stringify(p)} is not a directory in this batch`);
        const st = cachedStat(p);
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
      parentOk(o.path);
      post.set(o.path, 'dir');
      steps.push({ k: 'mkdir', path: o.path, mode: o.mode });
    }
    for (const o of ops) {
      if (o.op === 'file' || o.op === 'symlink') {
        parentOk(o.path);
        if (o.op === 'file' && o.base !== null) {
          assertSafeRelativePath(o.base);
          parentsAreRealDirsSync(this.root, o.base);
          const st = lstatOrNullSync(join(this.root, o.base));
          if (!st)
            throw new UnderstudyError(
              ErrorCode.SyncVerify,
              `delta base ${JSON.stringify(o.base)} is missing on the echo`,
              {
                details: { path: o.base },
              },
            );
          if (!st.isFile()) throw unsafePath(o.base, 'delta base is not a regular file');
        }
        post.set(o.path, o.op);
      } else if (o.op === 'chmod') {
        parentOk(o.path);
        steps.push({ k: 'chmod', path: o.path, mode: o.mode });
      }
    }
    return steps;
  }

  /**
   * Commits a staged batch: makes its staged files and the previous batches' effects durable, writes
   * the journal record (the commit point), then runs the steps. A batch's effects are fsynced in the
   * background from the moment they ran. A batch of only patches and mode changes does not wait for
   * that: its record also carries the redo steps of the earlier such batches whose flush is still under
   * way (replaying patches in order is idempotent), so the hot path of appends costs one fsync. Any other
   * batch waits for every flush first. Returns when (ms since epoch) the journal record became durable.
   */
  async commit(staged: StagedBatch): Promise<number> {
    const dir = this.#stagingDir(staged.seq);
    let carried: Unflushed[] = [];
    if (this.durable) {
      const outstanding = (this.#unflushed = this.#unflushed.filter((u) => !u.done));
      const replayable = staged.steps.every((st) => st.k === 'patch' || st.k === 'chmod');
      const carryBytes = outstanding.reduce((n, u) => n + u.redo.length, 0);
      if (
        replayable &&
        outstanding.length <= MAX_CARRIED &&
        carryBytes <= MAX_CARRIED_BYTES &&
        outstanding.every((u) => u.steps)
      )
        carried = outstanding;
      else {
        // This batch's staged content and the earlier batches' effects must be durable before this
        // journal record exists; the filesystem groups the concurrent flushes.
        const content = staged.steps
          .filter((st): st is Extract<JournalStep, { k: 'place' }> => st.k === 'place')
          .map((st) => join(dir, st.staged));
        // Many files: one syncfs(2) (`sync -f`) beats thousands of fsyncs; else fsync each.
        const paths = outstanding.reduce((n, u) => n + u.paths.length, content.length);
        if (!(paths > 64 && (await syncFilesystem(this.metaDir))))
          await Promise.all([fsyncAll(content), this.#flushEffects()]);
        this.#unflushed = [];
      }
    }
    // Carried steps first (already run), then this batch's; redo offsets rebased onto one section.
    const steps: JournalStep[] = [];
    const redo: Buffer[] = [];
    let base = 0;
    for (const part of [...carried.map((u) => ({ steps: u.steps ?? [], redo: u.redo })), staged]) {
      for (const st of part.steps) steps.push(st.k === 'patch' ? { ...st, at: st.at + base } : st);
      const r = Buffer.isBuffer(part.redo) ? [part.redo] : part.redo;
      for (const b of r) {
        redo.push(b);
        base += b.length;
      }
    }
    const journal: Journal = {
      gen: this.#state.gen ?? 0,
      lineage: staged.lineage,
      seq: staged.seq,
      steps,
      carried: steps.length - staged.steps.length,
    };
    await this.#writeJournal(staged.seq % 2, encodeJournal(journal, redo));
    const durableAt = performance.timeOrigin + performance.now();
    const own = Buffer.concat(staged.redo);
    const effects = await runJournal(
      this.root,
      { ...journal, steps: staged.steps, carried: 0 },
      own,
      dir,
      this.#hashes,
    );
    this.#state = { lineage: journal.lineage, lastApplied: journal.seq, gen: journal.gen };
    if (this.durable && effects.size > 0) {
      const replayable = staged.steps.every((st) => st.k === 'patch' || st.k === 'chmod');
      this.#unflushed.push({
        paths: [...effects],
        steps: replayable ? staged.steps : null,
        redo: own,
        done: false,
      });
      // Replayable effects are flushed in groups (one fsync of a file patched by many batches):
      // when enough are carried, or once commits pause. Others at once (the next commit waits).
      const carry = this.#unflushed.filter((u) => !u.flush);
      const bytes = carry.reduce((n, u) => n + u.redo.length, 0);
      if (!replayable || carry.length >= FLUSH_GROUP || bytes >= FLUSH_GROUP_BYTES) this.#startFlushes();
      else {
        clearTimeout(this.#flushTimer);
        this.#flushTimer = setTimeout(() => this.#startFlushes(), FLUSH_IDLE_MS);
        this.#flushTimer.unref();
      }
    }
    if (staged.staged) await rm(dir, { recursive: true, force: true });
    return durableAt;
  }

  async #writeJournal(slot: number, record: Buffer): Promise<void> {
    let fh = this.#slots[slot];
    if (!fh) {
      fh = await open(join(this.metaDir, SLOTS[slot] as string), fsc.O_RDWR | fsc.O_CREAT, 0o600);
      this.#slots[slot] = fh;
      // Preallocated once: records are then written over allocated blocks without changing the
      // size, so their fdatasync flushes data only and never waits for a filesystem journal commit
      // (which would include other processes' pending writes).
      if (this.durable && (await fh.stat()).size < JOURNAL_PREALLOC_BYTES) {
        await fh.write(Buffer.alloc(JOURNAL_PREALLOC_BYTES), 0, JOURNAL_PREALLOC_BYTES, 0);
        await fh.sync();
      }
    }
    // A small record is written synchronously (into the page cache); only the flush waits.
    if (record.length <= 1 << 20) writeSync(fh.fd, record, 0, record.length, 0);
    else await fh.write(record, 0, record.length, 0);
    if (this.durable) await fh.datasync();
  }

  async #closeSlots(): Promise<void> {
    const open = this.#slots.splice(0, 2, undefined, undefined);
    for (const fh of open) await fh?.close();
  }

  /** Discards a staged batch. */
  async abort(seq: number): Promise<void> {
    await rm(this.#stagingDir(seq), { recursive: true, force: true });
  }

  /** Waits for pending flushes and closes the journal files. Idempotent. */
  async close(): Promise<void> {
    await this.#flushEffects().catch(() => undefined);
    await this.#closeSlots();
  }
}
