import { randomUUID } from 'node:crypto';
import { EchoReplicator, type EchoReplicationStats, type EchoTarget } from './echo-replicator.js';
import { AckedSeqs } from './acked-seqs.js';
import { catchUpFromLog, type CatchUpState } from './catch-up.js';
import { KeyedQueue } from './keyed-queue.js';
import { isMutationUnder, partitionUnder } from './mutation-rules.js';
import type { Mutation, MutationKind } from './mutation.js';
import { Sequencer, entryOf } from './sequencer.js';
import { DurableMutationLog } from './mutation-log-durable.js';
import { DurableWaits } from './durable-waits.js';
import { DEFAULT_BATCH_LINGER_MS } from './batch.js';
import { logFlushOptions } from './log-flush-policy.js';
import {
  MAX_SKIP_ENTRIES,
  RESTART_SEQ_LEAP,
  positionAfterRestart,
  replayVerdictOf,
  type ReplayVerdict,
} from './restart-resume.js';
import type {
  MutationRequest,
  MutationTicket,
  ServiceReplicationOptions,
  ServiceReplicationStats,
  WriteThroughOutcome,
} from './replication-types.js';

export { RESTART_SEQ_LEAP } from './restart-resume.js';

export {
  ASYNC_LOG_FLUSH_INTERVAL_MS,
  WRITE_THROUGH_LOG_BUSY_BATCH,
  WRITE_THROUGH_LOG_FLUSH_INTERVAL_MS,
} from './log-flush-policy.js';
export type { ReplayVerdict } from './restart-resume.js';
export type {
  MutationRequest,
  MutationRules,
  MutationTicket,
  ServiceReplicationOptions,
  ServiceReplicationStats,
  WriteThroughOutcome,
} from './replication-types.js';

/**
 * The ordered mutation log of one service and its replication to every echo (seeds 000 and 002:
 * mutations applied to live and echo in near-real time). The router calls {@link begin} for each
 * mutating request (which serialises it within its partition), forwards it to the primary, then
 * {@link commit}s it (logged and replayed on each echo; in write-through mode the client's answer waits
 * for the echoes) or {@link abort}s it (the primary did not apply it).
 */
export class ServiceReplication {
  readonly log: DurableMutationLog;
  readonly #queue = new KeyedQueue();
  readonly #echoes = new Map<string, EchoReplicator>();
  /** Echoes being brought up to date from the log (disk): live mutations reach them through the log. */
  readonly #catchingUp = new Map<string, CatchUpState>();
  readonly #acked = new AckedSeqs();
  readonly #echoList = (): Iterable<EchoReplicator> => this.#echoes.values();
  /** Write-through over a durable log: the log's batches not yet durable (or whose write failed). */
  readonly #durableWaits = new DurableWaits();
  #strictRefusals = 0;
  /** Echoes removed after an exit (see {@link wasEcho}). */
  readonly #formerEchoes = new Set<string>();
  #logRefusals = 0;
  // Pipelined order (see docs/failover.md): seqs handed out, resolved out of order, logged in order.
  readonly #order: 'serial' | 'pipelined';
  readonly #stream: string;
  readonly #window: number;
  readonly #seqs: Sequencer;
  /** The current primary, fed every logged entry it did not resolve itself. */
  #primaryFeed: EchoReplicator | undefined;
  /** Position of removed echoes (a promoted one's feed starts there). */
  readonly #positionOf = new Map<string, number>();
  /** Demoted primaries: every seq up to this was consumed by them (a rejoin replays from there). */
  readonly #demotedAt = new Map<string, number>();
  #closed = false;
  /**
   * Pipelined order over a reopened durable log: held until the primary said which seq it consumed last
   * (see {@link sequencingReady}).
   */
  #positioning: { ready: Promise<void>; release: () => void } | undefined;

  /**
   * An in-memory log unless `log` is given (opened by {@link ServiceReplication.open} with
   * `options.log`).
   */
  constructor(
    private readonly options: ServiceReplicationOptions,
    log?: DurableMutationLog,
  ) {
    this.log =
      log ??
      DurableMutationLog.inMemory(
        options.logMaxBytes === undefined
          ? { memoryBytes: 64 * 1024 * 1024 }
          : { memoryBytes: options.logMaxBytes },
      );
    this.#order = options.rules.order ?? 'serial';
    // A durable log keeps its stream across restarts: instances keep counting where they were.
    this.#stream = options.stream ?? this.log.stream ?? randomUUID();
    this.#window = options.window ?? 128;
    this.#seqs = new Sequencer(
      () => this.log.lastSeq,
      (m, by) => {
        this.#append(m);
        if (this.#primaryFeed && by !== this.#primaryFeed.target.instanceId) this.#primaryFeed.enqueue(m);
      },
    );
    if (this.#order === 'pipelined' && this.log.durable && this.log.recovery.existing && options.appliedSeq) {
      let release = (): void => undefined;
      const ready = new Promise<void>((r) => (release = r));
      this.#positioning = { ready, release };
    }
  }

  /**
   * Pipelined order over a log an earlier process wrote: a promise to await before {@link sequence},
   * resolved once the primary said which seq it consumed last and the seqs it consumed beyond the log
   * were logged as skips ({@link skipTo}) — the killed process may have handed out seqs its log lost,
   * and handing them out again would make the primary answer a new write as a duplicate of an old one.
   * Undefined when nothing is to be awaited.
   */
  sequencingReady(): Promise<void> | undefined {
    return this.#positioning?.ready;
  }

  /**
   * Opens the durable log of `options.log` (recovering it), then the replication over it. Serial order
   * over a log an earlier process wrote: the log first moves {@link RESTART_SEQ_LEAP} seqs ahead
   * ({@link DurableMutationLog.skipAhead}), because that process may have handed mutations to echoes
   * under seqs it never made durable; reusing those seqs for new mutations would make an echo's
   * position name the wrong mutations, and replay would skip acknowledged writes. (Pipelined order
   * cannot leap — instances count every seq — and moves past what its primary consumed instead.)
   */
  static async open(options: ServiceReplicationOptions): Promise<ServiceReplication> {
    const log = await DurableMutationLog.open({
      ...(options.logMaxBytes === undefined ? {} : { memoryBytes: options.logMaxBytes }),
      ...logFlushOptions(options.consistency),
      ...options.log,
    });
    if ((options.rules.order ?? 'serial') === 'serial' && log.durable && log.recovery.existing)
      await log.skipAhead(log.lastSeq + RESTART_SEQ_LEAP);
    return new ServiceReplication(options, log);
  }

  get consistency(): 'write-through' | 'async' {
    return this.options.consistency;
  }

  /** `serial` or `pipelined` (see {@link MutationRules.order}). */
  get order(): 'serial' | 'pipelined' {
    return this.#order;
  }

  /** Pipelined order: the stream name instances see in `x-understudy-stream`. */
  get stream(): string {
    return this.#stream;
  }

  /** Pipelined order: numbers a mutation at arrival (the caller must {@link resolve} it, exactly once). */
  sequence(): number {
    return this.#seqs.sequence();
  }

  /**
   * Pipelined order: what became of seq `seq` — `apply` (the primary `by` applied it: 2xx) or `skip` (it
   * consumed the seq without applying: any other answer). Entries are logged and replayed in seq order,
   * so a resolved seq waits for every earlier one.
   */
  resolve(seq: number, request: MutationRequest, kind: MutationKind, by: string | undefined): void {
    if (!this.#seqs.isUnresolved(seq)) return;
    this.#seqs.resolve(this.#entry(seq, request, kind), by);
  }

  /**
   * Pipelined order: seq `seq` got no answer from the primary (it failed, or the client went away), so
   * whether it was applied is unknown. The current primary is asked to consume it as a skip; its answer
   * decides (consumed already with a 2xx, or of unknown outcome: `apply`, replaying the request on the
   * echoes, which apply it the same way; skipped or rejected: `skip`). While no primary can be asked,
   * this retries — unless a promotion moved the epoch past the one the request was stamped with and past
   * `sentUnder` (the epoch of the primary it was last sent to, when it was held or retried across a
   * promotion): every primary that may have applied it is fenced, and the seq is skipped everywhere.
   */
  async resolveUnanswered(seq: number, request: MutationRequest, sentUnder?: number): Promise<void> {
    let backoff = 10;
    const stamped = Math.max(request.epoch ?? this.options.epoch(), sentUnder ?? 0);
    while (!this.#closed && this.#seqs.isUnresolved(seq)) {
      const feed = this.#primaryFeed;
      if (feed) {
        try {
          const outcome = await feed.ask(this.#entry(seq, request, 'skip'));
          const applied =
            outcome === 'unknown' || (typeof outcome === 'number' && outcome >= 200 && outcome < 300);
          this.resolve(seq, request, applied ? 'apply' : 'skip', feed.target.instanceId);
          return;
        } catch {
          // Unreachable or not keeping the contract: retried below.
        }
      }
      if (this.options.epoch() > stamped) {
        this.resolve(seq, request, 'skip', undefined);
        return;
      }
      await new Promise((r) => setTimeout(r, backoff));
      backoff = Math.min(backoff * 2, 500);
    }
  }

  #entry(seq: number, request: MutationRequest, kind: MutationKind): Mutation {
    return entryOf(seq, request, kind, request.epoch ?? this.options.epoch());
  }

  /**
   * Pipelined order: traffic now goes to `target`. It is fed every logged entry it did not resolve itself
   * (skips decided without it, writes an older primary applied), starting where it stood as an echo.
   */
  setPrimary(target: EchoTarget): void {
    if (this.#order !== 'pipelined') return;
    const old = this.#primaryFeed;
    if (old && old.target.instanceId === target.instanceId) return;
    if (old) {
      this.#demotedAt.set(old.target.instanceId, this.#seqs.lowestUnresolved() - 1);
      old.close().catch(() => undefined);
    }
    const from = this.#positionOf.get(target.instanceId) ?? this.log.lastSeq;
    this.#positionOf.delete(target.instanceId);
    // The primary's feed (entries it did not resolve itself: rare) goes one request per entry.
    const feed = this.#replicator(target, () => undefined, false);
    this.#primaryFeed = feed;
    const positioning = this.#positioning;
    if (positioning && this.options.appliedSeq)
      void positionAfterRestart({
        target,
        probe: this.options.appliedSeq,
        current: () => !this.#closed && this.#positioning === positioning && this.#primaryFeed === feed,
        skipTo: (seq) => this.skipTo(seq),
      }).then((done) => {
        if (!done || this.#positioning !== positioning) return;
        positioning.release();
        this.#positioning = undefined;
      });
    // From memory: a primary's feed starts near the log's end (what it lacks as a former echo).
    for (const m of this.log.recent(Math.max(from, this.log.firstKeptSeq - 1)) ?? []) feed.enqueue(m);
  }

  #replicator(
    target: EchoTarget,
    onSyncChange: (inSync: boolean, reason: string) => void,
    batched = true,
  ): EchoReplicator {
    const batch = this.options.rules.batch;
    return new EchoReplicator({
      target,
      timeoutMs: this.options.rules.timeoutMs,
      onSyncChange,
      ...(this.#order === 'pipelined' ? { pipelined: { stream: this.#stream, window: this.#window } } : {}),
      ...(this.#order === 'pipelined' && batched && batch ? { batch } : {}),
      // Async: nobody waits for the echo, so a batch may wait to fill (write-through sends at once).
      ...(this.options.consistency === 'async' && batch
        ? { coalesceMs: batch.linger ?? DEFAULT_BATCH_LINGER_MS }
        : {}),
    });
  }

  /**
   * Whether a request is a mutation under the rules ({@link isMutationUnder}). `path` is the router's
   * normalised target (RouterRequest.path); `headers` (lower-case names) bring in method overrides.
   */
  isMutation(
    method: string,
    path: string,
    headers: Readonly<Record<string, string | string[] | undefined>> = {},
  ): boolean {
    return isMutationUnder(this.options.rules, method, path, headers);
  }

  /** The order key of a mutation ('' for the total order). */
  partitionOf(path: string, headers: Record<string, string | string[] | undefined>): string {
    return partitionUnder(this.options.rules, path, headers);
  }

  /** Waits for the mutation's turn within its partition. */
  async begin(partition: string): Promise<MutationTicket> {
    return { partition, release: await this.#queue.acquire(partition) };
  }

  /**
   * The primary applied the mutation: log it and replay it on every echo. Releases the partition (the
   * echoes keep the order themselves). Logged under `request.epoch` (the epoch it was sent and applied
   * under) when given, else the current epoch. Returns the logged mutation.
   */
  commit(ticket: MutationTicket, request: MutationRequest): Mutation {
    const m = entryOf(this.log.lastSeq + 1, request, 'apply', request.epoch ?? this.options.epoch());
    m.partition = ticket.partition;
    this.#append(m);
    ticket.release();
    return m;
  }

  /**
   * Logs a mutation (its durability awaited by {@link awaitEchoes}) and replays it on every live echo
   * (echoes catching up from the log get it from there, in order).
   */
  #append(m: Mutation): void {
    const durable = this.log.append(m);
    // Async mode does not wait for the log's fsync (a failed write is counted by the log).
    if (this.log.durable && this.options.consistency === 'write-through')
      this.#durableWaits.track(m.seq, durable);
    for (const [id, echo] of this.#echoes) if (!this.#catchingUp.has(id)) echo.enqueue(m);
  }

  /** The primary did not apply it: free the partition. */
  abort(ticket: MutationTicket): void {
    ticket.release();
  }

  /**
   * Write-through: waits until every echo in the synchronous set applied `seq` (or timed out and left
   * the set). Async mode returns at once. Records that the client is being acknowledged.
   */
  awaitEchoes(seq: number): Promise<WriteThroughOutcome> {
    const echoes = [...this.#echoes.values()];
    if (this.options.consistency === 'async') {
      // Async mode does not wait for the log's fsync either; a failed write is counted by the log.
      this.#acked.add(seq, this.#echoList);
      return Promise.resolve({
        acknowledge: true,
        appliedBy: echoes.filter((e) => this.#live(e) && e.hasApplied(seq)).map((e) => e.target.instanceId),
        missedBy: [],
      });
    }
    // Pipelined: the entry reaches the echoes once every earlier seq is resolved.
    if (this.#order === 'pipelined' && this.log.lastSeq < seq)
      return this.#seqs
        .waitReleased(seq, this.options.rules.timeoutMs)
        .then((released) => (released ? this.#awaitApplied(seq, echoes) : this.#unreleased(seq, echoes)));
    return this.#awaitApplied(seq, echoes);
  }

  /** Write-through: `seq` was not released within the timeout (an earlier seq is unresolved). */
  #unreleased(seq: number, echoes: EchoReplicator[]): WriteThroughOutcome {
    const acknowledge = !this.options.rules.strict;
    if (acknowledge) this.#acked.add(seq, this.#echoList);
    else this.#strictRefusals++;
    return { acknowledge, appliedBy: [], missedBy: echoes.map((e) => e.target.instanceId) };
  }

  /**
   * Write-through, `seq` released: waits for the echoes in the synchronous set, then for the log's
   * write (both under way already; the log's is usually done by then, so it costs no promise).
   */
  #awaitApplied(seq: number, echoes: EchoReplicator[]): Promise<WriteThroughOutcome> {
    const inSync = echoes.filter((e) => e.inSync && this.#live(e));
    const one = inSync.length === 1 ? (inSync[0] as EchoReplicator) : undefined;
    if (one) return one.waitApplied(seq).then((applied) => this.#afterLog(seq, echoes, inSync, [applied]));
    return Promise.all(inSync.map((e) => e.waitApplied(seq))).then((applied) =>
      this.#afterLog(seq, echoes, inSync, applied),
    );
  }

  #afterLog(
    seq: number,
    echoes: EchoReplicator[],
    inSync: EchoReplicator[],
    applied: boolean[],
  ): WriteThroughOutcome | Promise<WriteThroughOutcome> {
    const durable = this.#durableWaits.of(seq);
    return durable instanceof Promise
      ? durable.then((logError) => this.#outcome(seq, echoes, inSync, applied, logError))
      : this.#outcome(seq, echoes, inSync, applied, durable);
  }

  #outcome(
    seq: number,
    echoes: EchoReplicator[],
    inSync: EchoReplicator[],
    applied: boolean[],
    logError: string | undefined,
  ): WriteThroughOutcome {
    const appliedBy: string[] = [];
    for (let i = 0; i < inSync.length; i++)
      if (applied[i]) appliedBy.push((inSync[i] as EchoReplicator).target.instanceId);
    const missedBy = echoes.map((e) => e.target.instanceId).filter((id) => !appliedBy.includes(id));
    // Strict (Patroni's synchronous_mode_strict): nothing is acknowledged that no echo applied, also while
    // no echo is attached at all (between a promotion and the rebuilt echo's start), nor what the
    // durable log could not keep.
    const acknowledge = !(this.options.rules.strict && (appliedBy.length === 0 || logError !== undefined));
    if (acknowledge) this.#acked.add(seq, this.#echoList);
    else if (logError !== undefined) this.#logRefusals++;
    else this.#strictRefusals++;
    return { acknowledge, appliedBy, missedBy, ...(logError === undefined ? {} : { logError }) };
  }

  /** Whether an echo receives live mutations (it is not catching up from the log). */
  #live(e: EchoReplicator): boolean {
    return !this.#catchingUp.has(e.target.instanceId);
  }

  /**
   * Adds an echo and replays to it every mutation after `fromSeq` (its state's position). From memory
   * when the log still holds them there; else it catches up from the log on disk, page by page, outside
   * the synchronous set, and joins the live stream once it reaches what memory holds. The caller checks
   * {@link DurableMutationLog.canReplayFrom} first: from a position the log no longer holds, only what
   * is kept is replayed.
   */
  addEcho(target: EchoTarget, fromSeq: number): EchoReplicator {
    const id = target.instanceId;
    this.#echoes
      .get(id)
      ?.close()
      .catch(() => undefined);
    this.#formerEchoes.delete(id);
    const stale = this.#catchingUp.get(id);
    if (stale) stale.stop = true;
    this.#catchingUp.delete(id);
    const echo = this.#replicator(target, (inSync, reason) =>
      this.options.onEchoSyncChange?.(id, inSync, reason),
    );
    this.#echoes.set(id, echo);
    // A demoted primary may lack seqs resolved after it stopped being asked (the instance deduplicates).
    const demoted = this.#demotedAt.get(id);
    this.#demotedAt.delete(id);
    const wanted = demoted === undefined ? fromSeq : Math.min(fromSeq, demoted);
    const from = Math.max(wanted, this.log.firstKeptSeq - 1);
    const recent = this.log.recent(from);
    if (recent) {
      for (const m of recent) echo.enqueue(m);
      return echo;
    }
    const state: CatchUpState = { pos: from, stop: false };
    this.#catchingUp.set(id, state);
    this.options.onEchoSyncChange?.(id, false, `catching up from the mutation log after seq ${from}`);
    void this.#catchUp(echo, state).catch((err: unknown) => {
      if (this.#catchingUp.get(id) !== state) return;
      // It must not get live mutations after a hole: it is dropped from replication (it needs a full copy).
      this.#catchingUp.delete(id);
      if (this.#echoes.get(id) === echo) this.#echoes.delete(id);
      void echo.close().catch(() => undefined);
      this.options.onEchoSyncChange?.(
        id,
        false,
        `catching up from the log failed, no longer replicated to (it needs a full copy): ${(err as Error).message}`,
      );
    });
    return echo;
  }

  /** Replays the log from disk to a catching-up echo, then joins it live ({@link catchUpFromLog}). */
  async #catchUp(echo: EchoReplicator, state: CatchUpState): Promise<void> {
    const id = echo.target.instanceId;
    await catchUpFromLog(this.log, echo, state);
    if (state.stop || this.#catchingUp.get(id) !== state) return;
    // Synchronously with leaving the catching-up set: no live mutation is missed in between.
    for (const r of this.log.recent(state.pos) ?? []) echo.enqueue(r);
    this.#catchingUp.delete(id);
    this.options.onEchoSyncChange?.(id, true, 'replay from the mutation log reached the live stream');
  }

  /** Whether an echo at `appliedSeq` can be resumed by replaying the log, from where, and why ({@link replayVerdictOf}). */
  async replayVerdict(appliedSeq: number): Promise<ReplayVerdict> {
    return replayVerdictOf(this.log, this.options.rules, appliedSeq, (seq) => this.skipTo(seq));
  }

  /**
   * Moves the log (and the seqs handed out next) past `seq`: an instance consumed seqs the log lost
   * (its unwritten tail died with an earlier control process). In pipelined order (when no seq was
   * handed out since the log was opened) the lost seqs are logged as skip entries and every older
   * position stays replayable; otherwise positions before `seq` then need a full copy. Does nothing
   * when `seq` is not beyond the log.
   */
  async skipTo(seq: number): Promise<void> {
    const from = this.log.lastSeq;
    if (seq <= from) return;
    // Pipelined order, nothing handed out meanwhile: the lost seqs are logged as skip entries, so the
    // log stays gapless and an echo behind them still resumes by replay (consuming them as skips: the
    // writes among them were never acknowledged — not durable — and reach the echo when retried).
    if (
      this.#order === 'pipelined' &&
      this.#seqs.lastAssigned === from &&
      this.#seqs.unresolvedCount === 0 &&
      seq - from <= MAX_SKIP_ENTRIES
    ) {
      const request: MutationRequest = {
        method: this.options.rules.methods[0] ?? 'POST',
        path: this.options.rules.paths[0] ?? '/',
        headers: {},
        body: Buffer.alloc(0),
      };
      this.#seqs.assignedUpTo(seq);
      const writes: Array<Promise<void>> = [];
      for (let s = from + 1; s <= seq; s++) {
        const m = this.#entry(s, request, 'skip');
        // The primary consumed these seqs itself: only the log and the echoes get them.
        writes.push(this.log.append(m));
        for (const [id, echo] of this.#echoes) if (!this.#catchingUp.has(id)) echo.enqueue(m);
      }
      // A failed write leaves a gap the log handles (older positions then need a full copy).
      await Promise.allSettled(writes);
      return;
    }
    await this.log.skipTo(seq);
    this.#seqs.assignedUpTo(this.log.lastSeq);
  }

  /** Stops replaying to an echo (it was promoted, or is gone). */
  async removeEcho(instanceId: string): Promise<void> {
    const echo = this.#echoes.get(instanceId);
    this.#echoes.delete(instanceId);
    if (echo) this.#positionOf.set(instanceId, echo.contiguousApplied);
    if (echo) this.#formerEchoes.add(instanceId);
    await echo?.close();
  }

  /**
   * Whether `instanceId` was an echo of this service that was removed (it exited) and has not served
   * since: its state holds only replayed mutations, so it may be resumed by replay when it restarts.
   */
  wasEcho(instanceId: string): boolean {
    return this.#formerEchoes.has(instanceId);
  }

  /** `instanceId` serves now (promoted): its state may hold writes the log does not, never resume it by replay. */
  forgetEcho(instanceId: string): void {
    this.#formerEchoes.delete(instanceId);
  }

  /**
   * Acknowledged mutations an echo has not applied: what would be lost if it were promoted now.
   * Empty means promoting it loses nothing acknowledged.
   */
  atRisk(instanceId: string): number[] {
    const echo = this.#echoes.get(instanceId);
    if (!echo) return this.#acked.sorted();
    const catching = this.#catchingUp.get(instanceId);
    if (catching) return this.#acked.sorted().filter((s) => s > catching.pos || !echo.hasApplied(s));
    return echo.unappliedSeqs().filter((s) => this.#acked.has(s));
  }

  /** Waits (up to `timeoutMs`) until the echo has applied every logged mutation. */
  async waitCaughtUp(instanceId: string, timeoutMs: number): Promise<boolean> {
    const echo = this.#echoes.get(instanceId);
    if (!echo) return false;
    const deadline = Date.now() + timeoutMs;
    while (this.#catchingUp.has(instanceId) || echo.unappliedSeqs().length > 0) {
      if (Date.now() > deadline) return false;
      // What waits for its batch to fill leaves now: a failover is waiting for it.
      echo.flushNow();
      await new Promise((r) => setTimeout(r, 2));
    }
    return true;
  }

  echoes(): EchoReplicationStats[] {
    return [...this.#echoes.values()].map((e) => e.stats());
  }

  /** The log's and every echo's replication state (the API's `dataPlane.replication`). */
  stats(): ServiceReplicationStats {
    return {
      order: this.#order,
      // Pipelined: seqs handed out whose outcome is not known yet (a stuck one holds back the log).
      unresolved: this.#seqs.unresolvedCount,
      lastSeq: this.log.lastSeq,
      logBytes: this.log.bytes,
      strictRefusals: this.#strictRefusals,
      log: {
        durable: this.log.durable,
        durableSeq: this.log.durableSeq,
        firstKeptSeq: this.log.firstKeptSeq,
        writes: this.log.batchWrites,
        writeFailures: this.log.writeFailures.count,
        ...(this.log.writeFailures.last === undefined ? {} : { lastWriteError: this.log.writeFailures.last }),
        refusals: this.#logRefusals,
      },
      echoes: this.echoes(),
    };
  }

  /** Closes every echo replicator, then the log (writing what is pending). Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#positioning?.release();
    this.#positioning = undefined;
    this.#seqs.wakeAll();
    for (const state of this.#catchingUp.values()) state.stop = true;
    this.#catchingUp.clear();
    await this.#primaryFeed?.close();
    await Promise.all([...this.#echoes.values()].map((e) => e.close()));
    this.#echoes.clear();
    await this.log.close();
  }
}
