import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A real etcd started for a test file (see {@link startEtcd}). */
export interface EtcdServer {
  /** Client endpoint, `127.0.0.1:<port>`. */
  endpoint: string;
  /** Connection string for `--store`: `etcd://127.0.0.1:<port>`. */
  url: string;
  /** Stops etcd (SIGTERM, then SIGKILL) and removes its data directory. Idempotent. */
  stop(): Promise<void>;
  /** Stops the etcd process (SIGTERM, then SIGKILL), keeping its data directory: an outage. */
  halt(): Promise<void>;
  /** Starts etcd again on the same data directory and ports after {@link halt}; waits until healthy. */
  restart(): Promise<void>;
}

/** Options of {@link startEtcd}. */
export interface StartEtcdOptions {
  /** The etcd binary. @default process.env.UNDERSTUDY_ETCD_BIN ?? '/usr/bin/etcd' */
  binary?: string;
  /**
   * Raft heartbeat in ms. With the election timeout, it sets the server's minimum lease TTL
   * (1.5 × election ticks × heartbeat, rounded up to a second): the defaults give 1 s leases.
   * @default 50
   */
  heartbeatMs?: number;
  /** Raft election timeout in ms. @default 500 */
  electionTimeoutMs?: number;
  /** How long to wait for etcd to answer its health endpoint. @default 20000 */
  startTimeoutMs?: number;
}

/** A free TCP port on 127.0.0.1 (bound then released). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/**
 * Starts one etcd on 127.0.0.1 with free client and peer ports and a temporary data directory, and
 * waits until it is healthy. One per test file, shared by its tests (give each test its own key
 * prefix); call `stop()` in `afterAll`. Never touches 2379/2380.
 */
export async function startEtcd(options: StartEtcdOptions = {}): Promise<EtcdServer> {
  const binary = options.binary ?? process.env.UNDERSTUDY_ETCD_BIN ?? '/usr/bin/etcd';
  const dataDir = await mkdtemp(join(tmpdir(), 'understudy-etcd-'));
  const [clientPort, peerPort] = [await freePort(), await freePort()];
  const client = `http://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const name = `test-${clientPort}`;
  const args = (state: 'new' | 'existing'): string[] => [
    `--name=${name}`,
    `--data-dir=${join(dataDir, 'data')}`,
    `--listen-client-urls=${client}`,
    `--advertise-client-urls=${client}`,
    `--listen-peer-urls=${peer}`,
    `--initial-advertise-peer-urls=${peer}`,
    `--initial-cluster=${name}=${peer}`,
    `--initial-cluster-state=${state}`,
    `--heartbeat-interval=${options.heartbeatMs ?? 50}`,
    `--election-timeout=${options.electionTimeoutMs ?? 500}`,
    '--log-level=error',
    '--logger=zap',
  ];
  let stderr = '';
  let child: ChildProcess;
  let exited = false;
  let exit: Promise<void> = Promise.resolve();
  const launch = (state: 'new' | 'existing'): void => {
    child = spawn(binary, args(state), { stdio: ['ignore', 'ignore', 'pipe'] });
    exited = false;
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-4000);
    });
    exit = new Promise<void>((resolve) =>
      child.once('exit', () => {
        exited = true;
        resolve();
      }),
    );
  };
  const halt = async (): Promise<void> => {
    if (exited) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
    await exit;
    clearTimeout(timer);
  };
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await halt();
    await rm(dataDir, { recursive: true, force: true });
  };
  const healthy = async (): Promise<void> => {
    const deadline = Date.now() + (options.startTimeoutMs ?? 20_000);
    for (;;) {
      if (exited) throw new Error(`etcd exited during start-up: ${stderr.trim()}`);
      try {
        const res = await fetch(`${client}/health`, { signal: AbortSignal.timeout(1000) });
        const body = (await res.json()) as { health?: string };
        if (res.ok && body.health === 'true') return;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline)
        throw new Error(`etcd did not become healthy on ${client}: ${stderr.trim()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const restart = async (): Promise<void> => {
    if (stopped) throw new Error('etcd was stopped for good (stop()); restart() follows halt()');
    await halt();
    launch('existing');
    try {
      await healthy();
    } catch (err) {
      await stop();
      throw err;
    }
  };
  launch('new');
  try {
    await healthy();
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    endpoint: `127.0.0.1:${clientPort}`,
    url: `etcd://127.0.0.1:${clientPort}`,
    stop,
    halt,
    restart,
  };
}
