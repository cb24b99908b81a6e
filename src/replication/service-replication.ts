import { randomUUID } from 'node:crypto';
import { methodOverrides, pathMayMatch } from '../router/index.js';
import { EchoReplicator, type EchoReplicationStats, type EchoTarget } from './echo-replicator.js';
import { KeyedQueue } from './keyed-queue.js';
import { REPLAYED_HEADERS, type Mutation, type MutationKind } from './mutation.js';
import { MutationLog } from './mutation-log.js';

/** What counts as a mutation and how it is ordered (the spec's `echo.mutations`, resolved). */
export interface MutationRules {
  methods: string[];
  /** Path prefixes. */
  paths: string[];
  partitionBy?: { header: string } | { pathSegment: number };
  /** An echo that has not applied a mutation within this time leaves the synchronous set, ms. */
  timeoutMs: number;
  /** Write-through only: refuse to acknowledge a write no echo applied. */
  strict: boolean;
  /**
   * `serial`: one mutation in flight per partition (the primary's order is the order of answers);
   * `pipelined`: the router numbers every mutation at arrival and many are in flight, each instance
   * applying them in seq order (docs/failover.md, the instance contract). @default 'serial'
   */
  order?: 'serial' | 'pipelined';
}

/** A mutating request as the router received it (what is logged and replayed). */
export interface MutationRequest {
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  /** Epoch the request was stamped with (pipelined order). */
  epoch?: number;
}

/** Options of {@link ServiceReplication}. */
export interface ServiceReplicationOptions {
  service: string;
  rules: MutationRules;
  consistency: 'write-through' | 'async';
  /** The service's current epoch, stamped on every mutation. */
  epoch: () => number;
  /** Called when an echo leaves or rejoins the synchronous set (for decisions/events). */
  onEchoSyncChange?: (instanceId: string, inSync: boolean, reason: string) => void;
  /** Bytes of mutation bodies kept for replay. @default 64 MiB */
  logMaxBytes?: number;
  /**
   * Pipelined order: the name of this router's seq stream (`x-understudy-stream`); an instance that sees a
   * new stream starts counting at its seq 1. A durable log resuming after a restart passes its own.
   * @default a random UUID
   */
  stream?: string;
  /** Pipelined order: mutations in flight to one echo at once. @default 128 */
  window?: number;
}

/** A mutation in progress: hold its partition until {@link ServiceReplication.commit} or {@link ServiceReplication.abort}. */
export interface MutationTicket {
  partition: string;
  release: () => void;
}

/** Outcome of waiting for echoes before acknowledging a write. */
export interface WriteThroughOutcome {
  /** Acknowledge the client (false only in strict mode with no echo applied). */
  acknowledge: boolean;
  /** Echoes that applied it. */
  appliedBy: string[];
  /** Echoes that did not within the timeout. */
  missedBy: string[];
}

/**
 * The ordered mutation log of one service and its replication to every echo (seeds 000 and 002:
 * mutations applied to live and echo in near-real time). The router calls {@link begin} for each
 * mutating request (which serialises it within its partition), forwards it to the primary, then
 * {@link commit}s it (logged and replayed on each echo; in write-through mode the client's answer waits
 * for the echoes) or {@link abort}s it (the primary did not apply it).
 */
export class ServiceReplication {
  readonly log: MutationLog;
  readonly #queue = new KeyedQueue();
  readonly #echoes = new Map<string, EchoReplicator>();
  readonly #acked = new Set<number>();
  #strictRefusals = 0;
  // Pipelined order (see docs/failover.md): seqs handed out, resolved out of order, logged in order.
  readonly #order: 'serial' | 'pipelined';
  readonly #stream: string;
  readonly #window: number;
  #lastAssigned: number;
  /** Seqs assigned and not yet resolved (apply or skip). */
  readonly #unresolved = new Set<number>();
  /** Resolved seqs waiting for an earlier one to be resolved, with who resolved them. */
  readonly #resolved = new Map<number, { m: Mutation; by: string | undefined }>();
  readonly #loggedWaiters = new Map<number, Array<() => void>>();
  /** The current primary, fed every logged entry it did not resolve itself. */
  #primaryFeed: EchoReplicator | undefined;
  /** Position of removed echoes (a promoted one's feed starts there). */
  readonly #positionOf = new Map<string, number>();
  /** Demoted primaries: every seq up to this was consumed by them (a rejoin replays from there). */
  readonly #demotedAt = new Map<string, number>();
  #closed = false;

  constructor(private readonly options: ServiceReplicationOptions) {
    this.log = new MutationLog(options.logMaxBytes === undefined ? {} : { maxBytes: options.logMaxBytes });
    this.#order = options.rules.order ?? 'serial';
    this.#stream = options.stream ?? randomUUID();
    this.#window = options.window ?? 128;
    this.#lastAssigned = this.log.lastSeq;
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
    const seq = ++this.#lastAssigned;
    this.#unresolved.add(seq);
    return seq;
  }

  /**
   * Pipelined order: what became of seq `seq` — `apply` (the primary `by` applied it: 2xx) or `skip` (it
   * consumed the seq without applying: any other answer). Entries are logged and replayed in seq order,
   * so a resolved seq waits for every earlier one.
   */
  resolve(seq: number, request: MutationRequest, kind: MutationKind, by: string | undefined): void {
    if (!this.#unresolved.delete(seq)) return;
    const m = this.#entry(seq, request, kind);
    this.#resolved.set(seq, { m, by });
    for (;;) {
      const next = this.#resolved.get(this.log.lastSeq + 1);
      if (!next) break;
      this.#resolved.delete(next.m.seq);
      this.log.append(next.m);
      for (const echo of this.#echoes.values()) echo.enqueue(next.m);
      if (this.#primaryFeed && next.by !== this.#primaryFeed.target.instanceId)
        this.#primaryFeed.enqueue(next.m);
      const waiters = this.#loggedWaiters.get(next.m.seq);
      this.#loggedWaiters.delete(next.m.seq);
      for (const w of waiters ?? []) w();
    }
  }

  /**
   * Pipelined order: seq `seq` got no answer from the primary (it failed, or the client went away), so
   * whether it was applied is unknown. The current primary is asked to consume it as a skip; its answer
   * decides (consumed already with a 2xx, or of unknown outcome: `apply`, replaying the request on the
   * echoes, which apply it the same way; skipped or rejected: `skip`). While no primary can be asked,
   * this retries — unless a promotion moved the epoch past the one the request was stamped with: the
   * old primary is fenced, and the seq is skipped everywhere.
   */
  async resolveUnanswered(seq: number, request: MutationRequest): Promise<void> {
    let backoff = 10;
    const stamped = request.epoch ?? this.options.epoch();
    while (!this.#closed && this.#unresolved.has(seq)) {
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

  /** Resolves once `seq` is in the log (true), or after `timeoutMs` (false). */
  #waitLogged(seq: number, timeoutMs: number): Promise<boolean> {
    if (this.log.lastSeq >= seq) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      const list = this.#loggedWaiters.get(seq) ?? [];
      list.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
      this.#loggedWaiters.set(seq, list);
    });
  }

  #entry(seq: number, request: MutationRequest, kind: MutationKind): Mutation {
    const headers: Record<string, string> = {};
    if (kind === 'apply')
      for (const name of REPLAYED_HEADERS) {
        const v = request.headers[name];
        if (typeof v === 'string') headers[name] = v;
      }
    return {
      seq,
      kind,
      epoch: request.epoch ?? this.options.epoch(),
      partition: '',
      method: request.method.toUpperCase(),
      path: request.path,
      headers,
      body: kind === 'apply' ? request.body : Buffer.alloc(0),
      at: Date.now(),
    };
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
      let lowest = this.#lastAssigned + 1;
      for (const s of this.#unresolved) lowest = Math.min(lowest, s);
      this.#demotedAt.set(old.target.instanceId, lowest - 1);
      old.close().catch(() => undefined);
    }
    const from = this.#positionOf.get(target.instanceId) ?? this.log.lastSeq;
    this.#positionOf.delete(target.instanceId);
    const feed = this.#replicator(target, () => undefined);
    this.#primaryFeed = feed;
    for (const m of this.log.since(from)) feed.enqueue(m);
  }

  #replicator(target: EchoTarget, onSyncChange: (inSync: boolean, reason: string) => void): EchoReplicator {
    return new EchoReplicator({
      target,
      timeoutMs: this.options.rules.timeoutMs,
      onSyncChange,
      ...(this.#order === 'pipelined' ? { pipelined: { stream: this.#stream, window: this.#window } } : {}),
    });
  }

  /**
   * Whether a request is a mutation under the rules: a mutating method and a path that may be under one
   * of the mutation paths as a backend could read it ({@link pathMayMatch}: conservative, so no spelling
   * of a write escapes replication). `path` is the router's normalised target (RouterRequest.path);
   * `headers` (lower-case names) bring in the methods asked for by a method-override header.
   */
  isMutation(
    method: string,
    path: string,
    headers: Readonly<Record<string, string | string[] | undefined>> = {},
  ): boolean {
    const { methods, paths } = this.options.rules;
    const mutating =
      methods.includes(method.toUpperCase()) || methodOverrides(headers).some((m) => methods.includes(m));
    return mutating && pathMayMatch(path, paths);
  }

  /** The order key of a mutation ('' for the total order). */
  partitionOf(path: string, headers: Record<string, string | string[] | undefined>): string {
    const by = this.options.rules.partitionBy;
    if (!by) return '';
    if ('header' in by) {
      const v = headers[by.header.toLowerCase()];
      return Array.isArray(v) ? (v[0] ?? '') : (v ?? '');
    }
    return path.split('?')[0]?.split('/').filter(Boolean)[by.pathSegment] ?? '';
  }

  /** Waits for the mutation's turn within its partition. */
  async begin(partition: string): Promise<MutationTicket> {
    return { partition, release: await this.#queue.acquire(partition) };
  }

  /**
   * The primary applied the mutation: log it and replay it on every echo. Releases the partition (the
   * echoes keep the order themselves). Returns the logged mutation.
   */
  commit(ticket: MutationTicket, request: MutationRequest): Mutation {
    const headers: Record<string, string> = {};
    for (const name of REPLAYED_HEADERS) {
      const v = request.headers[name];
      if (typeof v === 'string') headers[name] = v;
    }
    const m = this.log.append({
      seq: this.log.lastSeq + 1,
      kind: 'apply',
      epoch: this.options.epoch(),
      partition: ticket.partition,
      method: request.method.toUpperCase(),
      path: request.path,
      headers,
      body: request.body,
      at: Date.now(),
    });
    for (const echo of this.#echoes.values()) echo.enqueue(m);
    ticket.release();
    return m;
  }

  /** The primary did not apply it: free the partition. */
  abort(ticket: MutationTicket): void {
    ticket.release();
  }

  /**
   * Write-through: waits until every echo in the synchronous set applied `seq` (or timed out and left
   * the set). Async mode returns at once. Records that the client is being acknowledged.
   */
  async awaitEchoes(seq: number): Promise<WriteThroughOutcome> {
    const echoes = [...this.#echoes.values()];
    if (this.options.consistency === 'async') {
      this.#acked.add(seq);
      this.#trimAcked();
      return {
        acknowledge: true,
        appliedBy: echoes.filter((e) => e.hasApplied(seq)).map((e) => e.target.instanceId),
        missedBy: [],
      };
    }
    // Pipelined: the entry reaches the echoes once every earlier seq is resolved.
    if (this.#order === 'pipelined' && !(await this.#waitLogged(seq, this.options.rules.timeoutMs))) {
      const missedBy = echoes.map((e) => e.target.instanceId);
      const acknowledge = !this.options.rules.strict;
      if (acknowledge) this.#acked.add(seq);
      else this.#strictRefusals++;
      return { acknowledge, appliedBy: [], missedBy };
    }
    const inSync = echoes.filter((e) => e.inSync);
    const results = await Promise.all(
      inSync.map(async (e) => [e.target.instanceId, await e.waitApplied(seq)] as const),
    );
    const appliedBy = results.filter(([, ok]) => ok).map(([id]) => id);
    const missedBy = echoes.map((e) => e.target.instanceId).filter((id) => !appliedBy.includes(id));
    // Strict (Patroni's synchronous_mode_strict): nothing is acknowledged that no echo applied, also while
    // no echo is attached at all (between a promotion and the rebuilt echo's start).
    const acknowledge = !(this.options.rules.strict && appliedBy.length === 0);
    if (acknowledge) this.#acked.add(seq);
    else this.#strictRefusals++;
    this.#trimAcked();
    return { acknowledge, appliedBy, missedBy };
  }

  /** Adds an echo and replays to it every kept mutation after `fromSeq` (its state's position). */
  addEcho(target: EchoTarget, fromSeq: number): EchoReplicator {
    this.#echoes
      .get(target.instanceId)
      ?.close()
      .catch(() => undefined);
    const echo = this.#replicator(target, (inSync, reason) =>
      this.options.onEchoSyncChange?.(target.instanceId, inSync, reason),
    );
    this.#echoes.set(target.instanceId, echo);
    // A demoted primary may lack seqs resolved after it stopped being asked (the instance deduplicates).
    const demoted = this.#demotedAt.get(target.instanceId);
    this.#demotedAt.delete(target.instanceId);
    const from = demoted === undefined ? fromSeq : Math.min(fromSeq, demoted);
    for (const m of this.log.since(from)) echo.enqueue(m);
    return echo;
  }

  /** Stops replaying to an echo (it was promoted, or is gone). */
  async removeEcho(instanceId: string): Promise<void> {
    const echo = this.#echoes.get(instanceId);
    this.#echoes.delete(instanceId);
    if (echo) this.#positionOf.set(instanceId, echo.contiguousApplied);
    await echo?.close();
  }

  /**
   * Acknowledged mutations an echo has not applied: what would be lost if it were promoted now.
   * Empty means promoting it loses nothing acknowledged.
   */
  atRisk(instanceId: string): number[] {
    const echo = this.#echoes.get(instanceId);
    if (!echo) return [...this.#acked].sort((a, b) => a - b);
    return echo.unappliedSeqs().filter((s) => this.#acked.has(s));
  }

  /** Waits (up to `timeoutMs`) until the echo has applied every logged mutation. */
  async waitCaughtUp(instanceId: string, timeoutMs: number): Promise<boolean> {
    const echo = this.#echoes.get(instanceId);
    if (!echo) return false;
    const deadline = Date.now() + timeoutMs;
    while (echo.unappliedSeqs().length > 0) {
      if (Date.now() > deadline) return false;
      await new Promise((r) => setTimeout(r, 2));
    }
    return true;
  }

  echoes(): EchoReplicationStats[] {
    return [...this.#echoes.values()].map((e) => e.stats());
  }

  stats(): {
    lastSeq: number;
    logBytes: number;
    strictRefusals: number;
    echoes: EchoReplicationStats[];
    order: 'serial' | 'pipelined';
    unresolved: number;
  } {
    return {
      order: this.#order,
      // Pipelined: seqs handed out whose outcome is not known yet (a stuck one holds back the log).
      unresolved: this.#unresolved.size,
      lastSeq: this.log.lastSeq,
      logBytes: this.log.bytes,
      strictRefusals: this.#strictRefusals,
      echoes: this.echoes(),
    };
  }

  /** Acked seqs every echo applied can be forgotten. */
  #trimAcked(): void {
    if (this.#acked.size < 4096) return;
    for (const s of this.#acked) {
      if ([...this.#echoes.values()].every((e) => e.hasApplied(s))) this.#acked.delete(s);
    }
  }

  /** Closes every echo replicator. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const list of this.#loggedWaiters.values()) for (const w of list) w();
    this.#loggedWaiters.clear();
    await this.#primaryFeed?.close();
    await Promise.all([...this.#echoes.values()].map((e) => e.close()));
    this.#echoes.clear();
  }
}
