import type { Socket } from 'node:net';

/** What {@link ConnectionQueue} runs: one request's exchange. */
export interface QueuedExchange {
  /** Starts handling the request; the exchange calls {@link ConnectionQueue.next} once it is finished. */
  start(): void;
  /** True once the exchange is over (answered, failed, or its client gone). */
  readonly finished: boolean;
  /** The client connection closed. */
  closed(): void;
}

/**
 * The exchanges of one client connection, run one at a time in the order the client sent them. node's
 * server emits pipelined requests as soon as it parses them; started together, a GET sent after a POST
 * could reach the backend first (it needs no body and no replication turn). So the next request on a
 * connection starts only once the one before it is finished, as in HAProxy.
 */
export class ConnectionQueue<T extends QueuedExchange> {
  /** The exchange running now, if any. */
  active: T | undefined;
  #waiting: T[] | undefined;

  constructor(private readonly socket: Socket) {}

  /** Starts `ex` now if the connection is idle, or once the exchanges before it are finished. */
  add(ex: T): void {
    if (this.active === undefined) {
      this.active = ex;
      ex.start();
      return;
    }
    if (this.#waiting === undefined) {
      this.#waiting = [];
      // node signals a closed connection to the response being written only; those waiting are told here.
      this.socket.once('close', () => this.#closed());
    }
    this.#waiting.push(ex);
  }

  #closed(): void {
    const waiting = this.#waiting ?? [];
    this.#waiting = [];
    for (const ex of waiting) ex.closed();
  }

  /** The active exchange finished: start the next one (on the next tick, outside its callbacks). */
  next(): void {
    this.active = undefined;
    let ex = this.#waiting?.shift();
    // One whose client went away while it waited is already finished.
    while (ex?.finished === true) ex = this.#waiting?.shift();
    if (ex === undefined) return;
    const started = ex;
    this.active = started;
    process.nextTick(() => started.start());
  }
}

const kQueue = Symbol('exchanges');
type SocketWithQueue = Socket & { [kQueue]?: ConnectionQueue<QueuedExchange> };

/** The queue of a client connection, created on its first request. */
export function connectionQueue<T extends QueuedExchange>(socket: Socket): ConnectionQueue<T> {
  const s = socket as SocketWithQueue;
  return (s[kQueue] ??= new ConnectionQueue(socket)) as unknown as ConnectionQueue<T>;
}
