import type { Mutation } from './mutation.js';

/** Options of {@link MutationLog}. */
export interface MutationLogOptions {
  /** Bytes of mutation bodies kept for replay; the oldest are dropped past it. @default 64 MiB */
  maxBytes?: number;
  /** First sequence number is `startSeq + 1`. @default 0 */
  startSeq?: number;
}

/**
 * The per-service ordered mutation log: the primary's order, kept in memory (bounded) so a lagging or
 * new echo can be brought up to date by replay. A replay from a sequence older than what is kept needs
 * a full state copy instead ({@link MutationLog.canReplayFrom}).
 */
export class MutationLog {
  readonly #entries: Mutation[] = [];
  #head = 0;
  #bytes = 0;
  #lastSeq: number;
  readonly #maxBytes: number;

  constructor(options: MutationLogOptions = {}) {
    this.#maxBytes = options.maxBytes ?? 64 * 1024 * 1024;
    this.#lastSeq = options.startSeq ?? 0;
  }

  /**
   * Appends a mutation whose sequence number the caller assigned: it must be exactly `lastSeq + 1` (the
   * log is gapless; a consumed seq that was not applied is logged as a `skip` entry).
   */
  append(entry: Mutation): Mutation {
    if (entry.seq !== this.#lastSeq + 1)
      throw new RangeError(`mutation log: expected seq ${this.#lastSeq + 1}, got ${entry.seq}`);
    this.push(entry);
    return entry;
  }

  /** Appends a mutation whose sequence number is greater than {@link lastSeq} (gaps allowed: the durable log's memory tail). */
  push(entry: Mutation): void {
    if (!(entry.seq > this.#lastSeq))
      throw new RangeError(`mutation seq ${entry.seq} is not after the last seq ${this.#lastSeq}`);
    this.#lastSeq = entry.seq;
    this.#entries.push(entry);
    this.#bytes += entry.body.length + entry.path.length + 64;
    while (this.#bytes > this.#maxBytes && this.#head < this.#entries.length - 1) {
      const old = this.#entries[this.#head++];
      if (old) this.#bytes -= old.body.length + old.path.length + 64;
    }
    if (this.#head > 1024 && this.#head * 2 > this.#entries.length) {
      this.#entries.splice(0, this.#head);
      this.#head = 0;
    }
  }

  /** Sequence number of the last appended mutation (0 when none). */
  get lastSeq(): number {
    return this.#lastSeq;
  }

  /** Oldest sequence number still kept, or lastSeq + 1 when empty. */
  get firstKeptSeq(): number {
    return this.#entries[this.#head]?.seq ?? this.#lastSeq + 1;
  }

  /** Whether every mutation after `seq` is still kept. */
  canReplayFrom(seq: number): boolean {
    return seq >= this.firstKeptSeq - 1;
  }

  /** Mutations with sequence number > `seq`, oldest first. */
  since(seq: number): Mutation[] {
    const out: Mutation[] = [];
    for (let i = this.#head; i < this.#entries.length; i++) {
      const e = this.#entries[i];
      if (e && e.seq > seq) out.push(e);
    }
    return out;
  }

  /** Bytes held. */
  get bytes(): number {
    return this.#bytes;
  }
}
