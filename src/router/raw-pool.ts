import { connect, type Socket } from 'node:net';

/** The exchange currently using an upstream socket; receives the socket's events. */
export interface RawOwner {
  onUpstreamData(d: Buffer): void;
  /** The backend closed or reset the connection. */
  onUpstreamEnd(): void;
  /** No activity for the pool's timeout while this owner waited. */
  onUpstreamTimeout(): void;
}

const kOwner = Symbol('owner');
type OwnedSocket = Socket & { [kOwner]?: RawOwner | undefined };

/**
 * Keep-alive TCP connections to one HTTP backend for the fast path. Each socket has its listeners for
 * life and forwards events to its current owner, so an exchange costs no listener or timer churn.
 * Busy sockets are tracked so the backend can drain (close) or be cut (destroy).
 */
export class RawPool {
  readonly #idle: OwnedSocket[] = [];
  readonly #busy = new Set<OwnedSocket>();
  #closed = false;
  #drained: (() => void) | undefined;

  /** `timeoutMs`: inactivity limit of a busy socket (the response timeout) and of an idle one. */
  constructor(
    private readonly host: string,
    private readonly port: number,
    private readonly connectTimeoutMs: number,
    private readonly timeoutMs: number,
  ) {}

  /** Calls back with a connected socket now owned by `owner` (reused when one is idle), or with the connect error. */
  acquire(
    owner: RawOwner,
    cb: (err: NodeJS.ErrnoException | undefined, s: Socket | undefined) => void,
  ): void {
    if (this.#closed) {
      cb(Object.assign(new Error('backend pool closed'), { code: 'UND_ERR_CLOSED' }), undefined);
      return;
    }
    while (this.#idle.length > 0) {
      const s = this.#idle.pop() as OwnedSocket;
      if (s.destroyed || !s.writable) continue;
      s[kOwner] = owner;
      this.#busy.add(s);
      if (s.isPaused()) s.resume();
      cb(undefined, s);
      return;
    }
    const s: OwnedSocket = connect({ host: this.host, port: this.port, noDelay: true });
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
      this.#wire(s);
      s[kOwner] = owner;
      this.#busy.add(s);
      cb(undefined, s);
    });
    s.once('error', (err: NodeJS.ErrnoException) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      cb(err, undefined);
    });
  }

  #wire(s: OwnedSocket): void {
    if (this.timeoutMs > 0) s.setTimeout(this.timeoutMs);
    s.on('data', (d: Buffer) => {
      const o = s[kOwner];
      if (o) o.onUpstreamData(d);
      else s.destroy(); // bytes nobody asked for: the connection cannot be trusted
    });
    const ended = (): void => {
      const o = s[kOwner];
      s[kOwner] = undefined;
      this.#forget(s);
      o?.onUpstreamEnd();
    };
    s.on('end', () => s.destroy());
    s.on('close', ended);
    s.on('error', () => s.destroy());
    s.on('timeout', () => {
      const o = s[kOwner];
      if (o) o.onUpstreamTimeout();
      else s.destroy();
    });
  }

  /** Returns a socket after a complete exchange; `reusable` false destroys it. */
  release(s: Socket, reusable: boolean): void {
    const o = s as OwnedSocket;
    o[kOwner] = undefined;
    this.#busy.delete(o);
    if (!reusable || this.#closed || o.destroyed) o.destroy();
    else this.#idle.push(o);
    this.#checkDrained();
  }

  #forget(s: OwnedSocket): void {
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

  /** Cuts every connection now (their owners see the connection end). */
  destroy(): void {
    this.#closed = true;
    for (const s of this.#idle.splice(0)) s.destroy();
    for (const s of [...this.#busy]) s.destroy();
    this.#checkDrained();
  }
}
