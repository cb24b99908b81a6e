import { Pool } from 'undici';
import type { BackendResource } from './backend-set.js';
import { RawPool } from './raw-pool.js';
import type { ResolvedRouterOptions } from './router-options.js';

/** Connections to one HTTP backend: an undici keep-alive pool (full path) and raw sockets (fast path). */
export class PoolResource implements BackendResource {
  readonly pool: Pool;
  readonly raw: RawPool;
  constructor(target: { host: string; port: number }, opts: ResolvedRouterOptions) {
    this.raw = new RawPool(target.host, target.port, opts.connectTimeoutMs, opts.headersTimeoutMs);
    this.pool = new Pool(`http://${target.host}:${target.port}`, {
      connections: opts.connectionsPerBackend,
      connectTimeout: opts.connectTimeoutMs,
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
