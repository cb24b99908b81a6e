// One dispatch of a request to one backend through undici: the handler undici calls back, which counts
// the bytes exchanged and passes the callbacks on to its exchange unless a later attempt replaced it.
import type { Dispatcher } from 'undici';
import type { BackendState } from './backend-set.js';
import type { PoolResource } from './pool-resource.js';
import { headBytes, sentBytes, STATUS_LINE_BYTES } from './proxy-headers.js';

/** The exchange an {@link Attempt} reports to: `attempt` is the number of its current attempt. */
export interface AttemptOwner {
  readonly attempt: number;
  onConnect(abort: (err?: Error) => void): void;
  onResponse(status: number, raw: Buffer[], resume: () => void): boolean;
  onChunk(chunk: Buffer): boolean;
  onEnd(): void;
  onUpstreamError(err: Error): void;
}

/** One dispatch of an exchange to one backend; stale callbacks of an abandoned attempt are ignored. */
export class Attempt implements Dispatcher.DispatchHandler {
  constructor(
    private readonly ex: AttemptOwner,
    private readonly n: number,
    /** Counts the bytes exchanged with the backend (every attempt's: they all crossed the network). */
    private readonly b: BackendState<PoolResource>,
  ) {}
  /** undici 7 passes the chunk sent (its types say its size): either is counted. */
  onBodySent(chunk: unknown): void {
    this.b.bytesOut += sentBytes(chunk);
  }
  onConnect(abort: (err?: Error) => void): void {
    if (this.n === this.ex.attempt) this.ex.onConnect(abort);
  }
  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void): boolean {
    this.b.bytesIn += STATUS_LINE_BYTES + headBytes(rawHeaders);
    if (this.n !== this.ex.attempt) return false;
    if (statusCode < 200) return true;
    return this.ex.onResponse(statusCode, rawHeaders, resume);
  }
  onData(chunk: Buffer): boolean {
    this.b.bytesIn += chunk.length;
    return this.n === this.ex.attempt ? this.ex.onChunk(chunk) : false;
  }
  onComplete(): void {
    if (this.n === this.ex.attempt) this.ex.onEnd();
  }
  onError(err: Error): void {
    if (this.n === this.ex.attempt) this.ex.onUpstreamError(err);
  }
}
