import type { Socket } from 'node:net';
import type { ResponseHeadMemo } from './response-head.js';
import type { UpstreamDialer } from './upstream-tls.js';

/** The exchange currently using an upstream connection; receives the connection's events. */
export interface RawOwner {
  /**
   * Bytes from the backend. `d` is a view of the shared read buffer, valid only during the call: it
   * is overwritten by the next read of any connection, so an owner copies whatever it keeps or writes.
   */
  onUpstreamData(d: Buffer): void;
  /** The backend closed or reset the connection. */
  onUpstreamEnd(): void;
  /** No activity for the pool's timeout while this owner waited. */
  onUpstreamTimeout(): void;
}

/**
 * The one buffer every upstream connection reads into. Sharing is safe because each read's callback
 * runs to completion before the next read (one thread) and owners copy out what they keep; memory
 * stays constant however many connections are open.
 */
const READ_BUFFER = Buffer.allocUnsafe(64 * 1024);

/**
 * One keep-alive connection to the backend. Reads land in a shared buffer (`onread`), with no stream
 * machinery and no allocation per read; events go to the current owner.
 */
export class RawConn {
  owner: RawOwner | undefined = undefined;
  /** The last response head parsed on this connection (see `responseHead`). */
  headMemo: ResponseHeadMemo | undefined = undefined;
  readonly socket: Socket;
  /** The event that says the connection can carry bytes (`secureConnect` through a TLS ingress). */
  readonly ready: 'connect' | 'secureConnect';

  constructor(dialer: UpstreamDialer, target: { id: string; host: string; port: number }) {
    const d = dialer.dial(target, {
      onread: { buffer: READ_BUFFER, callback: (n: number, b: Uint8Array) => this.#read(n, b) },
    });
    this.socket = d.socket;
    this.ready = d.ready;
  }

  #read(n: number, b: Uint8Array): boolean {
    const o = this.owner;
    if (o === undefined) {
      this.socket.destroy(); // bytes nobody asked for: the connection cannot be trusted
      return false;
    }
    o.onUpstreamData((b as Buffer).subarray(0, n));
    return true;
  }

  /** Sends bytes to the backend. */
  write(data: Buffer): void {
    this.socket.write(data);
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/**
 * Keep-alive TCP connections to one HTTP backend for the fast path. Each connection has its listeners
 * for life and forwards events to its current owner, so an exchange costs no listener or timer churn.
 * Busy connections are tracked so the backend can drain (close) or be cut (destroy).
 */
export class RawPool {
  readonly #idle: RawConn[] = [];
  readonly #busy = new Set<RawConn>();
  #closed = false;
  #drained: (() => void) | undefined;

  /** `timeoutMs`: inactivity limit of a busy connection (the response timeout) and of an idle one. */
  constructor(
    private readonly dialer: UpstreamDialer,
    private readonly target: { id: string; host: string; port: number },
    private readonly connectTimeoutMs: number,
    private readonly timeoutMs: number,
  ) {}

  /**
   * Calls back with a connection now owned by `owner` (reused when one is idle, unless `fresh`), or with
   * the connect error.
   */
  acquire(
    owner: RawOwner,
    fresh: boolean,
    cb: (err: NodeJS.ErrnoException | undefined, conn: RawConn | undefined) => void,
  ): void {
    if (this.#closed) {
      cb(Object.assign(new Error('backend pool closed'), { code: 'UND_ERR_CLOSED' }), undefined);
      return;
    }
    while (!fresh && this.#idle.length > 0) {
      const conn = this.#idle.pop() as RawConn;
      const s = conn.socket;
      if (s.destroyed || !s.writable) continue;
      conn.owner = owner;
      this.#busy.add(conn);
      if (s.isPaused()) s.resume();
      cb(undefined, conn);
      return;
    }
    const conn = new RawConn(this.dialer, this.target);
    const s = conn.socket;
    let settled = false;
    const timer = setTimeout(() => {
      if (settled) return;
      settled = true;
      s.destroy();
      cb(Object.assign(new Error('connect timeout'), { code: 'UND_ERR_CONNECT_TIMEOUT' }), undefined);
    }, this.connectTimeoutMs);
    s.once(conn.ready, () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (this.#closed) {
        s.destroy();
        cb(Object.assign(new Error('backend pool closed'), { code: 'UND_ERR_CLOSED' }), undefined);
        return;
      }
      this.#wire(conn);
      conn.owner = owner;
      this.#busy.add(conn);
      cb(undefined, conn);
    });
    s.once('error', (err: NodeJS.ErrnoException) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      cb(err, undefined);
    });
  }

  #wire(conn: RawConn): void {
    const s = conn.socket;
    if (this.timeoutMs > 0) s.setTimeout(this.timeoutMs);
    s.on('end', () => s.destroy());
    s.on('close', () => {
      const o = conn.owner;
      conn.owner = undefined;
      this.#forget(conn);
      o?.onUpstreamEnd();
    });
    s.on('error', () => s.destroy());
    s.on('timeout', () => {
      const o = conn.owner;
      if (o) o.onUpstreamTimeout();
      else s.destroy();
    });
  }

  /** Returns a connection after a complete exchange; `reusable` false destroys it. */
  release(conn: RawConn, reusable: boolean): void {
    conn.owner = undefined;
    this.#busy.delete(conn);
    if (!reusable || this.#closed || conn.socket.destroyed) conn.socket.destroy();
    else this.#idle.push(conn);
    this.#checkDrained();
  }

  #forget(conn: RawConn): void {
    this.#busy.delete(conn);
    const i = this.#idle.indexOf(conn);
    if (i >= 0) this.#idle.splice(i, 1);
    this.#checkDrained();
  }

  #checkDrained(): void {
    if (this.#closed && this.#busy.size === 0 && this.#drained) {
      const d = this.#drained;
      this.#drained = undefined;
      d();
    }
  }

  /** Accepts no new work; resolves when busy connections are released. Idle ones close at once. */
  close(): Promise<void> {
    this.#closed = true;
    for (const c of this.#idle.splice(0)) c.socket.destroy();
    if (this.#busy.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.#drained = resolve;
    });
  }

  /** Cuts every connection now (their owners see the connection end). */
  destroy(): void {
    this.#closed = true;
    for (const c of this.#idle.splice(0)) c.socket.destroy();
    for (const c of [...this.#busy]) c.socket.destroy();
    this.#checkDrained();
  }
}
