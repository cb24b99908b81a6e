import { Client, Pool } from 'undici';
import type { BackendResource } from './backend-set.js';
import { RawPool } from './raw-pool.js';
import type { ResolvedRouterOptions } from './router-options.js';
import type { UpstreamDialer } from './upstream-tls.js';

/** Connections to one HTTP backend: an undici keep-alive pool (full path) and raw sockets (fast path). */
export class PoolResource implements BackendResource {
  readonly pool: Pool;
  readonly raw: RawPool;
  /** `dialer` opens the connections: plain, or TLS through the ingress of the backend's host. */
  constructor(
    private readonly target: { id: string; host: string; port: number },
    private readonly opts: ResolvedRouterOptions,
    private readonly dialer: UpstreamDialer,
  ) {
    this.raw = new RawPool(dialer, target, opts.connectTimeoutMs, opts.headersTimeoutMs);
    this.pool = new Pool(`http://${target.host}:${target.port}`, {
      connections: opts.connectionsPerBackend,
      connect: dialer.connector(target, opts.connectTimeoutMs),
      headersTimeout: opts.headersTimeoutMs,
      bodyTimeout: opts.bodyTimeoutMs,
      keepAliveTimeout: 4000,
    });
    // Connection errors reach the requests that needed the connection; nothing else to do here.
    this.pool.on('connectionError', () => undefined);
  }
  /**
   * A one-request client on a connection of its own, opened now: for the retry of a request whose pooled
   * connection was reset. A killed backend resets every pooled connection, and the pool may not have seen
   * the others close yet; a new connection is either answered or refused (a connect error, which ejects
   * the backend). The client closes itself once its request is done.
   */
  once(): Pick<Pool, 'dispatch'> {
    const client = new Client(`http://${this.target.host}:${this.target.port}`, {
      pipelining: 1,
      connect: this.dialer.connector(this.target, this.opts.connectTimeoutMs),
      headersTimeout: this.opts.headersTimeoutMs,
      bodyTimeout: this.opts.bodyTimeoutMs,
    });
    client.on('connectionError', () => undefined);
    return {
      dispatch: (o, handler) => {
        const ok = client.dispatch(o, handler);
        // Graceful: waits for the request just dispatched, then closes the connection.
        void client.close().catch(() => undefined);
        return ok;
      },
    };
  }

  async close(): Promise<void> {
    await Promise.all([this.pool.close(), this.raw.close()]);
  }
  destroy(): void {
    this.raw.destroy();
    void this.pool.destroy().catch(() => undefined);
  }
}
