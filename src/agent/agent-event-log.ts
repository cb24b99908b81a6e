import type { AgentEvent } from './agent-wire.js';

/** An event before it is numbered. */
export type UnnumberedAgentEvent = AgentEvent extends infer E
  ? E extends AgentEvent
    ? Omit<E, 'seq'>
    : never
  : never;

/**
 * The events an agent pushes (exits, watch verdicts, sync events), numbered 1, 2, 3, … and kept in a
 * bounded buffer so that a client that reconnects receives what it missed.
 */
export class AgentEventLog {
  readonly #buffer: AgentEvent[] = [];
  readonly #listeners = new Set<(event: AgentEvent) => void>();
  #seq = 0;

  /** @param capacity Events kept for reconnecting clients (older ones are dropped). */
  constructor(private readonly capacity: number) {}

  /** The sequence number of the latest event (0 before the first). */
  get seq(): number {
    return this.#seq;
  }

  /** Numbers an event, keeps it and hands it to every subscriber. */
  push(event: UnnumberedAgentEvent): AgentEvent {
    const numbered = { ...event, seq: ++this.#seq } as AgentEvent;
    this.#buffer.push(numbered);
    if (this.#buffer.length > this.capacity) this.#buffer.splice(0, this.#buffer.length - this.capacity);
    for (const l of this.#listeners) l(numbered);
    return numbered;
  }

  /**
   * The kept events after `after`; `gap` is true when some events after `after` are no longer kept (the
   * client must re-read what it cares about).
   */
  since(after: number): { events: AgentEvent[]; gap: boolean } {
    const oldest = this.#buffer[0]?.seq ?? this.#seq + 1;
    return { events: this.#buffer.filter((e) => e.seq > after), gap: after < oldest - 1 };
  }

  /** Calls `listener` with every later event; returns the unsubscribe function. */
  subscribe(listener: (event: AgentEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}
