import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { HOSTS_PREFIX, parseHostRecord, restartWindow, type HostRecord } from '../../agent/index.js';
import type { InstanceRecord } from '../../control/index.js';
import {
  EtcdStateStore,
  isEtcdUrl,
  parseEtcdUrl,
  SqliteStateStore,
  STORE_DB_FILE,
  type StateStore,
} from '../../store/index.js';
import { ErrorCode, UnderstudyError } from '../../errors/index.js';
import { ExitCode, reportError } from '../exit-codes.js';
import { formatBytes, formatDuration, table } from '../output.js';

/** Options of `understudy hosts`. */
export interface HostsOptions {
  /** The store: a SQLite data directory or `etcd://host:port[,…][/prefix]`. */
  store: string;
  /** @default 'table' */
  output?: 'table' | 'json';
  /** The current time (ms), for the agents' uptime. @default Date.now() */
  now?: number;
}

/**
 * One host as `understudy hosts` shows it. `lease: 'held'`: its agent's record is in the store under a
 * lease it renews (the store deletes it when the lease lapses); `'none'`: a record without a lease
 * (it never expires: a host registered by hand); `'gone'`: instances are recorded on it but it has no
 * record (its agent stopped or its lease lapsed), or it is the embedded mode's in-process host;
 * `'restarting'`: its agent stopped for a planned restart (`--leave-running`), its instances run on and
 * control waits for the next agent until `restartingUntil`.
 */
export interface HostView {
  host: string;
  zone: string | null;
  address: string | null;
  url: string | null;
  cores: number | null;
  memoryBytes: number | null;
  lease: 'held' | 'none' | 'gone' | 'restarting';
  /** The end of a planned restart's window (ms since the epoch) while `lease` is `restarting`. */
  restartingUntil: number | null;
  /** ms the agent has run (from its record's `startedAt`). */
  upMs: number | null;
  instances: { id: string; service: string; role: string; phase: string }[];
}

type InstanceSummary = Pick<InstanceRecord, 'id' | 'service' | 'role' | 'host' | 'phase'>;

function parseInstance(value: string): InstanceSummary | undefined {
  try {
    const r = JSON.parse(value) as Partial<InstanceRecord>;
    if (typeof r.id !== 'string' || typeof r.host !== 'string' || typeof r.service !== 'string')
      return undefined;
    return {
      id: r.id,
      service: r.service,
      role: r.role ?? 'primary',
      host: r.host,
      phase: r.phase ?? 'starting',
    };
  } catch {
    return undefined;
  }
}

/**
 * The hosts of a store and what runs where: every `hosts/<name>` record, and every host named by an
 * instance record (a host without a record shows `lease: 'gone'`). Sorted by host name; instances by id.
 */
export async function listHosts(store: Pick<StateStore, 'list'>, now: number): Promise<HostView[]> {
  const views = new Map<string, HostView>();
  for (const r of await store.list(HOSTS_PREFIX)) {
    const rec: HostRecord | undefined = parseHostRecord(r.value);
    if (!rec) continue;
    views.set(rec.host, {
      host: rec.host,
      zone: rec.zone ?? null,
      address: rec.address,
      url: rec.url,
      cores: rec.cores,
      memoryBytes: rec.memoryBytes,
      lease: restartWindow(rec, now) !== undefined ? 'restarting' : r.leaseId ? 'held' : 'none',
      restartingUntil: restartWindow(rec, now) ?? null,
      upMs: Math.max(0, now - rec.startedAt),
      instances: [],
    });
  }
  for (const r of await store.list('instances/')) {
    const inst = parseInstance(r.value);
    if (!inst) continue;
    let view = views.get(inst.host);
    if (!view) {
      view = {
        host: inst.host,
        zone: null,
        address: null,
        url: null,
        cores: null,
        memoryBytes: null,
        lease: 'gone',
        restartingUntil: null,
        upMs: null,
        instances: [],
      };
      views.set(inst.host, view);
    }
    view.instances.push({ id: inst.id, service: inst.service, role: inst.role, phase: inst.phase });
  }
  const byKey =
    <T>(k: (x: T) => string) =>
    (a: T, b: T) =>
      k(a) < k(b) ? -1 : k(a) > k(b) ? 1 : 0;
  const out = [...views.values()].sort(byKey((v) => v.host));
  for (const v of out) v.instances.sort(byKey((i) => i.id));
  return out;
}

/** The table `understudy hosts` prints: one line per host, then one per instance under it. */
export function hostsTable(views: readonly HostView[]): string {
  if (views.length === 0) return 'no hosts: no agent has registered and no instance is recorded\n';
  const rows: string[][] = [];
  for (const v of views) {
    rows.push([
      v.host,
      v.zone ?? '-',
      v.address ?? '-',
      v.cores === null ? '-' : String(v.cores),
      v.memoryBytes === null ? '-' : formatBytes(v.memoryBytes),
      v.lease,
      v.upMs === null ? '-' : formatDuration(v.upMs),
      String(v.instances.length),
    ]);
    for (const i of v.instances)
      rows.push([`  ${i.id}`, '', '', '', '', '', '', `${i.service} ${i.role} ${i.phase}`]);
  }
  return table(['HOST', 'ZONE', 'ADDRESS', 'CORES', 'MEMORY', 'LEASE', 'UP', 'INSTANCES'], rows);
}

async function openStore(spec: string): Promise<StateStore> {
  if (isEtcdUrl(spec)) {
    const target = parseEtcdUrl(spec);
    return EtcdStateStore.create({
      endpoints: target.endpoints,
      ...(target.prefix ? { prefix: target.prefix } : {}),
    });
  }
  const dataDir = resolve(spec);
  // Reading must not create a store where there is none (a mistyped directory).
  if (!existsSync(join(dataDir, STORE_DB_FILE)))
    throw new UnderstudyError(
      ErrorCode.StoreUnavailable,
      `no store in ${dataDir} (no ${STORE_DB_FILE}): pass --store <data dir or etcd://host:port>`,
    );
  return SqliteStateStore.create({ dataDir });
}

/** `understudy hosts`: the hosts in the store (zone, address, capacity, lease) and what runs where. */
export async function runHosts(options: HostsOptions): Promise<number> {
  let store: StateStore | undefined;
  try {
    store = await openStore(options.store);
    const views = await listHosts(store, options.now ?? Date.now());
    process.stdout.write(
      (options.output ?? 'table') === 'json'
        ? `${JSON.stringify({ hosts: views }, null, 2)}\n`
        : hostsTable(views),
    );
    return ExitCode.Ok;
  } catch (err) {
    return reportError(err);
  } finally {
    await store?.close();
  }
}
