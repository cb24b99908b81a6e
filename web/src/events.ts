import { get } from './api.js';
import type { Decision } from './types.js';

/** Decisions kept in the page (newest win). */
const KEEP = 500;

type Listener = (d: Decision) => void;

/**
 * The decision log as the page knows it: the last {@link KEEP} decisions, loaded once and then kept
 * live from the API's event stream (a settled decision arrives again with its outcome and replaces
 * the pending one). On a dropped stream the browser reconnects and the gap is fetched.
 */
export class DecisionFeed {
  readonly #bySeq = new Map<number, Decision>();
  readonly #listeners = new Set<Listener>();
  #source: EventSource | undefined;
  #status: (text: string, ok: boolean) => void;

  constructor(status: (text: string, ok: boolean) => void) {
    this.#status = status;
  }

  #add(d: Decision): void {
    this.#bySeq.set(d.seq, d);
    if (this.#bySeq.size > KEEP) {
      const oldest = Math.min(...this.#bySeq.keys());
      this.#bySeq.delete(oldest);
    }
    for (const l of this.#listeners) l(d);
  }

  get #lastSeq(): number {
    let m = 0;
    for (const k of this.#bySeq.keys()) m = Math.max(m, k);
    return m;
  }

  async #catchUp(): Promise<void> {
    const { events } = await get<{ events: Decision[] }>(`/v1/events?after=${this.#lastSeq}&limit=${KEEP}`);
    for (const d of events) this.#add(d);
  }

  /** Loads the recent decisions and opens the live stream. */
  async start(): Promise<void> {
    await this.#catchUp();
    const source = new EventSource('/v1/events/stream');
    this.#source = source;
    source.onopen = () => {
      this.#status('live', true);
      void this.#catchUp().catch(() => undefined);
    };
    source.onerror = () => this.#status('reconnecting…', false);
    source.onmessage = (e: MessageEvent<string>) => this.#add(JSON.parse(e.data) as Decision);
  }

  /** Decisions of `service` (all with undefined), oldest first. */
  list(service?: string): Decision[] {
    return [...this.#bySeq.values()]
      .filter((d) => service === undefined || d.service === service)
      .sort((a, b) => a.seq - b.seq);
  }

  /** Calls `l` on every new or settled decision; returns the unsubscribe function. */
  subscribe(l: Listener): () => void {
    this.#listeners.add(l);
    return () => this.#listeners.delete(l);
  }

  close(): void {
    this.#source?.close();
  }
}
