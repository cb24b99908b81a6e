import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ErrorCode, UnderstudyError } from '../../errors/index.js';
import { RouterNode } from '../../router-node/index.js';
import {
  EtcdStateStore,
  SqliteStateStore,
  STORE_DB_FILE,
  isEtcdUrl,
  parseEtcdUrl,
  type StateStore,
} from '../../store/index.js';
import { ExitCode, reportError } from '../exit-codes.js';

/** Options of `understudy router`. */
export interface RouterCommandOptions {
  /** The store to follow: a data directory (SQLite) or `etcd://host:port[,…][/prefix/]`. @default the global `--data-dir` */
  store: string;
  service: string;
  /** `host:port`; overrides the spec's `routing.listen`. */
  listen?: string;
  /** Longest a promotion may hold mutations, ms. @default 10000 */
  maxPauseMs?: number;
}

/**
 * Opens the store a standalone router follows: `etcd://…` (routers on any host), or a path, the data
 * directory whose SQLite store another process (`understudy up`) writes — several processes may open
 * it, and watches see the other process's writes within one tick.
 * Thrown: UNDERSTUDY_ERR_USAGE for a malformed `etcd://` string, another scheme, or a directory without
 * a store.
 */
export async function openRouterStore(store: string): Promise<StateStore> {
  if (isEtcdUrl(store)) {
    const target = parseEtcdUrl(store);
    return EtcdStateStore.create({
      endpoints: target.endpoints,
      ...(target.prefix ? { prefix: target.prefix } : {}),
    });
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(store))
    throw new UnderstudyError(
      ErrorCode.Usage,
      `--store ${store}: expected a data directory or etcd://host:port[,host:port...][/prefix/]`,
      { details: { flag: '--store' } },
    );
  const dataDir = resolve(store);
  if (!existsSync(join(dataDir, STORE_DB_FILE)))
    throw new UnderstudyError(
      ErrorCode.Usage,
      `--store ${dataDir}: no store there (${STORE_DB_FILE} is missing); give the data directory of a running or past 'understudy up'`,
      { details: { flag: '--store', dataDir } },
    );
  return SqliteStateStore.create({ dataDir });
}

/**
 * `understudy router --store … --service NAME [--listen ADDR]`: a router for one service in its own
 * process. It follows the store (instance records, epoch, promotion intent, routing record) and keeps
 * serving while every control process is down. Runs until SIGINT, SIGTERM or SIGHUP.
 */
export async function runRouter(options: RouterCommandOptions): Promise<number> {
  let wake: (signal: string) => void = () => undefined;
  const stop = new Promise<string>((r) => (wake = r));
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const s of signals) process.on(s, wake);
  let store: StateStore | undefined;
  let node: RouterNode | undefined;
  try {
    store = await openRouterStore(options.store);
    const log = (line: string): void => void process.stdout.write(`${new Date().toISOString()} ${line}\n`);
    node = await RouterNode.create({
      store,
      service: options.service,
      ...(options.listen ? { listen: options.listen } : {}),
      ...(options.maxPauseMs !== undefined ? { maxPauseMs: options.maxPauseMs } : {}),
      onChange: (line) => log(`router ${line}`),
      onStoreError: (err) => log(`router ${options.service}: store: ${err.message} (still serving)`),
    });
    const a = node.router.address;
    process.stdout.write(
      `understudy: router for ${node.service} listening on ${a.host}:${a.port}; following ${isEtcdUrl(options.store) ? options.store : resolve(options.store)}\n`,
    );
    const signal = await stop;
    process.stdout.write(`understudy: router stopping (${signal})\n`);
    return ExitCode.Ok;
  } catch (err) {
    return reportError(err);
  } finally {
    for (const s of signals) process.off(s, wake);
    await node?.close();
    await store?.close();
  }
}
