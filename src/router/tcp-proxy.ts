import type { Socket } from 'node:net';
import type { BackendResource, BackendSet, BackendState } from './backend-set.js';
import type { ResolvedRouterOptions } from './router-options.js';
import type { UpstreamDialer } from './upstream-tls.js';

/** Connections to one TCP backend: the sockets opened to it, so they can drain or be cut. */
export class SocketsResource implements BackendResource {
  readonly sockets = new Set<Socket>();
  #closing: (() => void) | undefined;
  #closed = false;

  add(s: Socket): void {
    this.sockets.add(s);
  }

  remove(s: Socket): void {
    this.sockets.delete(s);
    if (this.sockets.size === 0 && this.#closing) {
      const done = this.#closing;
      this.#closing = undefined;
      done();
    }
  }

  get closed(): boolean {
    return this.#closed;
  }

  close(): Promise<void> {
    this.#closed = true;
    if (this.sockets.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.#closing = resolve;
    });
  }

  destroy(): void {
    this.#closed = true;
    for (const s of this.sockets) s.destroy();
  }
}

/** TCP counters, as returned by {@link Router.stats}. */
export interface TcpStats {
  /** Client connections accepted. */
  connections: number;
  /** Client connections open now. */
  active: number;
  /** Backend connects that failed (refused, unreachable, timeout). */
  connectErrors: number;
  /** Client connections re-dispatched to another backend after a refused connect. */
  redispatched: number;
  /** Client connections closed because no backend became available in time. */
  unavailable: number;
  /** Connections cut because the backend failed after connecting (reset). */
  resets: number;
  bytesIn: number;
  bytesOut: number;
}

/** Shared state of the TCP data plane. */
export interface TcpProxyContext {
  readonly opts: ResolvedRouterOptions;
  readonly set: BackendSet<SocketsResource>;
  readonly stats: TcpStats;
  /** Opens backend connections: plain, or TLS through the ingress of the backend's host. */
  readonly dialer: UpstreamDialer;
}

/** Pipes one client connection to a backend chosen at connect time; data sent early waits in the client's buffer. */
export function handleTcpConnection(ctx: TcpProxyContext, client: Socket): void {
  const { stats, set, opts } = ctx;
  stats.connections++;
  stats.active++;
  client.setNoDelay(true);
  let upstream: Socket | undefined;
  let backend: BackendState<SocketsResource> | undefined;
  let deadline = 0;
  let done = false;
  let clientGone = false;

  const finish = (): void => {
    if (done) return;
    done = true;
    stats.active--;
    stats.bytesIn += client.bytesRead;
    stats.bytesOut += client.bytesWritten;
    if (upstream && backend) {
      backend.inFlight--;
      backend.resource.remove(upstream);
    }
    client.destroy();
    upstream?.destroy();
  };
  client.on('error', () => {
    clientGone = true;
    if (!upstream) finish();
  });
  client.on('close', () => {
    clientGone = true;
    if (upstream) upstream.destroy();
    else finish();
  });

  const tryConnect = (avoid: BackendState<SocketsResource> | undefined): void => {
    if (clientGone) return finish();
    const b = set.select(avoid);
    if (b !== undefined) return open(b);
    const now = performance.now();
    if (deadline === 0) deadline = now + opts.waitForBackendMs;
    set.waitFor(
      deadline - now,
      (got) => {
        if (clientGone) finish();
        else if (got === undefined) {
          stats.unavailable++;
          finish();
        } else open(got);
      },
      avoid,
    );
  };

  const open = (b: BackendState<SocketsResource>): void => {
    const started = performance.now();
    // Backend → client without the stream layer: each read lands in the shared buffer and leaves in
    // one copied write; a full client buffer stops reading until it drains.
    const { socket: up, ready } = ctx.dialer.dial(b, {
      allowHalfOpen: true,
      onread: {
        buffer: UPSTREAM_READ,
        callback: (n: number, buf: Uint8Array): boolean => {
          if (client.write(Buffer.from(buf.subarray(0, n)))) return true;
          client.once('drain', () => up.resume());
          return false;
        },
      },
    });
    let connected = false;
    const timer = setTimeout(
      () => up.destroy(Object.assign(new Error('connect timeout'), { code: 'ETIMEDOUT' })),
      opts.connectTimeoutMs,
    );
    up.once(ready, () => {
      clearTimeout(timer);
      connected = true;
      if (clientGone || b.resource.closed) {
        up.destroy();
        if (!clientGone) tryConnect(b);
        else finish();
        return;
      }
      upstream = up;
      backend = b;
      b.inFlight++;
      b.requests++;
      b.resource.add(up);
      b.latency.record(performance.now() - started);
      forward(client, up);
      up.on('end', () => client.end());
    });
    up.on('error', () => {
      clearTimeout(timer);
      if (!connected) {
        stats.connectErrors++;
        b.errors++;
        set.eject(b);
        stats.redispatched++;
        tryConnect(b);
        return;
      }
      stats.resets++;
      b.errors++;
    });
    up.on('close', () => {
      clearTimeout(timer);
      if (connected) finish();
    });
  };

  tryConnect(undefined);
}

/** One read buffer shared by every backend socket: each read is copied out before the next can land. */
const UPSTREAM_READ = Buffer.allocUnsafe(64 * 1024);

/** Copies bytes from one socket to the other with backpressure, and passes on a half-close (like pipe, with less machinery). */
function forward(from: Socket, to: Socket): void {
  const resume = (): void => {
    from.resume();
  };
  from.on('data', (d: Buffer) => {
    if (!to.write(d)) {
      from.pause();
      to.once('drain', resume);
    }
  });
  from.on('end', () => to.end());
}

/** Fresh zeroed TCP counters. */
export function newTcpStats(): TcpStats {
  return {
    connections: 0,
    active: 0,
    connectErrors: 0,
    redispatched: 0,
    unavailable: 0,
    resets: 0,
    bytesIn: 0,
    bytesOut: 0,
  };
}
