import { methodOverrides, pathMayMatch } from '../router/index.js';
import { EchoReplicator, type EchoReplicationStats, type EchoTarget } from './echo-replicator.js';
import { KeyedQueue } from './keyed-queue.js';
import { REPLAYED_HEADERS, type Mutation } from './mutation.js';
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

  constructor(private readonly options: ServiceReplicationOptions) {
    this.log = new MutationLog(options.logMaxBytes === undefined ? {} : { maxBytes: options.logMaxBytes });
  }

  get consistency(): 'write-through' | 'async' {
    return this.options.consistency;
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
  commit(
    ticket: MutationTicket,
    request: {
      method: string;
      path: string;
      headers: Record<string, string | string[] | undefined>;
      body: Buffer;
    },
  ): Mutation {
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
      return {
        acknowledge: true,
        appliedBy: echoes.filter((e) => e.hasApplied(seq)).map((e) => e.target.instanceId),
        missedBy: [],
      };
    }
    const inSync = echoes.filter((e) => e.inSync);
    const results = await Promise.all(
      inSync.map(async (e) => [e.target.instanceId, await e.waitApplied(seq)] as const),
    );
    const appliedBy = results.filter(([, ok]) => ok).map(([id]) => id);
    const missedBy = echoes.map((e) => e.target.instanceId).filter((id) => !appliedBy.includes(id));
    const acknowledge = !(this.options.rules.strict && appliedBy.length === 0 && echoes.length > 0);
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
    const echo = new EchoReplicator({
      target,
      timeoutMs: this.options.rules.timeoutMs,
      onSyncChange: (inSync, reason) => this.options.onEchoSyncChange?.(target.instanceId, inSync, reason),
    });
    this.#echoes.set(target.instanceId, echo);
    for (const m of this.log.since(fromSeq)) echo.enqueue(m);
    return echo;
  }

  /** Stops replaying to an echo (it was promoted, or is gone). */
  async removeEcho(instanceId: string): Promise<void> {
    const echo = this.#echoes.get(instanceId);
    this.#echoes.delete(instanceId);
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

  stats(): { lastSeq: number; logBytes: number; strictRefusals: number; echoes: EchoReplicationStats[] } {
    return {
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
    await Promise.all([...this.#echoes.values()].map((e) => e.close()));
    this.#echoes.clear();
  }
}
