// The acknowledged seqs of a service that some echo may lack: what promoting that echo could lose
// (ServiceReplication.atRisk). Seqs every echo applied are forgotten, in amortised scans.
/** What {@link AckedSeqs} asks of an echo. */
export interface AppliedView {
  hasApplied(seq: number): boolean;
}

/** Acknowledged seqs not known to be applied by every echo. */
export class AckedSeqs {
  readonly #seqs = new Set<number>();
  /** Size at which the set is scanned for seqs every echo applied. */
  #trimAt = 4096;

  /**
   * Records that `seq` was acknowledged; now and then (once the set grew by 1024 since the last scan,
   * not on every write while echoes lag and the set stays large) forgets the seqs every one of
   * `echoes()` applied.
   */
  add(seq: number, echoes: () => Iterable<AppliedView>): void {
    this.#seqs.add(seq);
    if (this.#seqs.size < this.#trimAt) return;
    const all = [...echoes()];
    for (const s of this.#seqs) if (all.every((e) => e.hasApplied(s))) this.#seqs.delete(s);
    this.#trimAt = Math.max(4096, this.#seqs.size + 1024);
  }

  has(seq: number): boolean {
    return this.#seqs.has(seq);
  }

  /** The seqs kept, ascending. */
  sorted(): number[] {
    return [...this.#seqs].sort((a, b) => a - b);
  }
}
