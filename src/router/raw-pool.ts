import { connect, type Socket } from 'node:net';

/**
 * Keep-alive TCP connections to one HTTP backend for the fast path: idle sockets are reused, busy ones
 * are tracked so the backend can drain (close) or be cut (destroy).
 */
export class RawPool {
  readonly #idle: Socket[] = [];
  readonly #busy = new Set<Socket>();
  #closed = false;
  #drained: (() => void) | undefined;

  constructor(
    private readonly host: string,
    private readonly port: number,
    private readonly connectTimeoutMs: number,
    private readonly idleTimeoutMs: number,
  ) {}

  /** Calls back with a connected socket (reused when one is idle), or with the connect error. */
  acquire(cb: (err: NodeJS.ErrnoException | undefined, s: Socket | undefined) => void): void {
    if (this.#closed) {
      cb(Object.assign(new Error('backend pool closed'), { code: 'UND_ERR_CLOSED' }), undefined);
      return;
    }
    while (this.#idle.length > 0) {
      const s = this.#idle.pop() as Socket;
      if (s.destroyed || !s.writable) continue;
      s.setTimeout(0);
      s.removeListener('timeout', onIdleTimeout);
      s.resume();
      this.#busy.add(s);
      cb(undefined, s);
      return;
    }
    const s = connect({ host: this.host, port: this.port, noDelay: true });
    let settled = false;
    const timer = setTimeout(() => {
      if (settled) return;
      settled = true;
      s.destroy();
      cb(Object.assign(new Error('connect timeout'), { code: 'UND_ERR_CONNECT_TIMEOUT' }), undefined);
    }, this.connectTimeoutMs);
    s.once('connect', () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (this.#closed) {
        s.destroy();
        cb(Object.assign(new Error('backend pool closed'), { code: 'UND_ERR_CLOSED' }), undefined);
        return;
      }
      s.on('error', noop);
      this.#busy.add(s);
      s.once('close', () => this.#forget(s));
      cb(undefined, s);
    });
    s.once('error', (err: NodeJS.ErrnoException) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      cb(err, undefined);
    });
  }

  /** Returns a socket after a complete exchange; `reusable` false destroys it. */
  release(s: Socket, reusable: boolean): void {
    this.#busy.delete(s);
    if (!reusable || this.#closed || s.destroyed) {
      s.destroy();
    } else {
      s.setTimeout(this.idleTimeoutMs);
      s.on('timeout', onIdleTimeout);
      this.#idle.push(s);
    }
    this.#checkDrained();
  }

  #forget(s: Socket): void {
    this.#busy.delete(s);
    const i = this.#idle.indexOf(s);
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

  /** Accepts no new work; resolves when busy sockets are released. Idle sockets close at once. */
  close(): Promise<void> {
    this.#closed = true;
    for (const s of this.#idle.splice(0)) s.destroy();
    if (this.#busy.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.#drained = resolve;
    });
  }

  /** Cuts every connection now. */
  destroy(): void {
    this.#closed = true;
    for (const s of this.#idle.splice(0)) s.destroy();
    for (const s of this.#busy) s.destroy();
    this.#busy.clear();
    this.#checkDrained();
  }
}

function noop(): void {}

function onIdleTimeout(this: Socket): void {
  this.destroy();
}
