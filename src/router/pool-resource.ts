import { Pool } from 'undici';
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
    target: { id: string; host: string; port: number },
    opts: ResolvedRouterOptions,
    dialer: UpstreamDialer,
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
  async close(): Promise<void> {
    await Promise.all([this.pool.close(), this.raw.close()]);
  }
  destroy(): void {
    this.raw.destroy();
    void this.pool.destroy().catch(() => undefined);
  }
}
