// One POST of a batch to an echo (batched replication, docs/failover.md), its answer buffered whole:
// through undici's dispatcher with a small handler, no response stream and no header object per
// request — a batch leaves for every few writes, on write-through's path.
import type { Dispatcher } from 'undici';

/** An instance's answer to a POST: its status and its body as text. */
export interface PostAnswer {
  status: number;
  text: string;
}

/** Bytes of an answer kept at most: a batch's answer is one JSON result per mutation. */
export const MAX_ANSWER_BYTES = 4 * 1024 * 1024;

/**
 * POSTs `body` to `path` through `dispatcher` (`headers` a flat name/value list) and resolves with the
 * answer; rejects when the request fails, a timeout (`timeoutMs`, for the head and between body
 * chunks) passes, or the answer is larger than {@link MAX_ANSWER_BYTES}.
 */
export function postBuffered(
  dispatcher: Dispatcher,
  path: string,
  headers: readonly string[],
  body: Buffer,
  timeoutMs: number,
): Promise<PostAnswer> {
  return new Promise((resolve, reject) => {
    dispatcher.dispatch(
      {
        method: 'POST',
        path,
        headers: headers as string[],
        body,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      },
      new BufferedAnswer(resolve, reject),
    );
  });
}

class BufferedAnswer implements Dispatcher.DispatchHandler {
  #status = 0;
  #chunks: Buffer[] = [];
  #bytes = 0;
  #abort: ((err?: Error) => void) | undefined;
  #settled = false;

  constructor(
    private readonly resolve: (answer: PostAnswer) => void,
    private readonly reject: (err: Error) => void,
  ) {}

  onConnect(abort: (err?: Error) => void): void {
    this.#abort = abort;
  }
  onHeaders(statusCode: number): boolean {
    if (statusCode >= 200) this.#status = statusCode;
    return true;
  }
  onData(chunk: Buffer): boolean {
    this.#bytes += chunk.length;
    if (this.#bytes > MAX_ANSWER_BYTES) {
      this.#fail(new Error(`answer larger than ${MAX_ANSWER_BYTES} bytes`));
      this.#abort?.(new Error('answer too large'));
      return false;
    }
    this.#chunks.push(chunk);
    return true;
  }
  onComplete(): void {
    if (this.#settled) return;
    this.#settled = true;
    const c = this.#chunks;
    const text = c.length === 1 ? (c[0] as Buffer).toString('utf8') : Buffer.concat(c).toString('utf8');
    this.resolve({ status: this.#status, text });
  }
  onError(err: Error): void {
    this.#fail(err);
  }
  #fail(err: Error): void {
    if (this.#settled) return;
    this.#settled = true;
    this.reject(err);
  }
}
