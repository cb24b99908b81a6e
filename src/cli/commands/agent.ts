import { isIP } from 'node:net';
import { cpus, networkInterfaces, totalmem } from 'node:os';
import { resolve } from 'node:path';
import {
  AgentServer,
  clusterKeyPath,
  clusterTlsIdentity,
  ensureClusterKey,
  HOST_NAME,
  HostLease,
  hostKey,
  LocalAgent,
  LOOPBACK,
  parseHostRecord,
  parseListen,
  readClusterKey,
  TlsIngress,
  type HostRecord,
} from '../../agent/index.js';
import type { InstanceRecord } from '../../control/index.js';
import { ErrorCode, UnderstudyError } from '../../errors/index.js';
import { ProcessRuntime } from '../../runtime/index.js';
import {
  EtcdStateStore,
  isEtcdUrl,
  isLocalProcessAlive,
  parseEtcdUrl,
  SqliteStateStore,
  type StateStore,
} from '../../store/index.js';
import { ExitCode, reportError } from '../exit-codes.js';

/** Options of `understudy agent`. */
export interface AgentCommandOptions {
  /** The store: a SQLite data directory, or `etcd://host:port[,host:port…]`. */
  store: string;
  /** This host's name (`InstanceRecord.host`). */
  host: string;
  /** Where the agent API listens. @default '127.0.0.1:0' */
  listen?: string;
  /** Zone of the host (placement). @default none */
  zone?: string;
  /** The cluster key file. @default `<store dir>/cluster.key` for SQLite; required for etcd */
  clusterKey?: string;
  /** The address this host's instances are reached at. @default the listen host (127.0.0.1 for a wildcard) */
  address?: string;
  /** TTL of the host record's lease, ms (renewed every third of it). @default 10000 */
  leaseTtlMs?: number;
  /**
   * Self-fencing bound, ms: with no lease renewal for this long and no other host answering, the
   * agent fences its primaries (before the lease can lapse). 0 turns it off.
   * @default 600, or two thirds of the lease TTL when that is shorter (`HostLease`)
   */
  fenceAfterMs?: number;
  /** On SIGTERM/SIGINT, leave the instances running (a restarted agent adopts them). @default false */
  leaveRunning?: boolean;
  /**
   * With `leaveRunning`: how long the stop is a planned restart, ms. The host record stays, marked
   * `restartingUntil` now + this, under a lease of this TTL: control holds the host's suspicion (no
   * host loss, no failover) until then, and the next agent of the host adopts the instances and clears
   * the mark. Not back in time, the record lapses and the host is lost. 0: no hand-over (the host leaves
   * at once, as without `leaveRunning`). At most {@link MAX_RESTART_GRACE_MS}.
   * @default 30000
   */
  restartGraceMs?: number;
  /** Grace period when stopping instances at shutdown, ms. @default 5000 */
  stopGraceMs?: number;
  /**
   * Serve the agent API over HTTPS under the cluster CA (`cluster-ca.pem` beside the cluster key,
   * created by the first process that needs it): a certificate for this host name and its addresses is
   * issued at start, clients must present one of the same CA. false with an etcd store is warned about.
   * @default true with an etcd store (distributed mode), false with SQLite (one machine)
   */
  tls?: boolean;
  /**
   * With TLS: the agent's TLS port also takes the routers' connections to this host's instances (the
   * TLS ingress: a control replica's client certificate of the cluster CA, the instance and port named
   * in SNI, piped over loopback), and the host record says so, so that control's routers reach the
   * instances here through TLS. false: routers reach them in plain TCP at `address`.
   * @default true (whenever TLS is on)
   */
  ingress?: boolean;
}

/** The longest planned-restart window `--restart-grace` accepts, ms (10 min). */
export const MAX_RESTART_GRACE_MS = 600_000;

async function openStore(spec: string): Promise<{ store: StateStore }> {
  if (isEtcdUrl(spec)) {
    const target = parseEtcdUrl(spec);
    const store = await EtcdStateStore.create({
      endpoints: target.endpoints,
      ...(target.prefix ? { prefix: target.prefix } : {}),
    });
    return { store };
  }
  return { store: await SqliteStateStore.create({ dataDir: resolve(spec) }) };
}

/**
 * The addresses the agent's certificate names: the instances' address and the listen address, or with
 * a wildcard listen every address of the machine's interfaces (clients connect to any of them).
 */
function certificateAddresses(listenHost: string, address: string): string[] {
  const out = new Set<string>();
  if (isIP(address) !== 0) out.add(address);
  if (['0.0.0.0', '::', ''].includes(listenHost)) {
    for (const list of Object.values(networkInterfaces()))
      for (const a of list ?? []) out.add(a.address.replace(/%.*$/, ''));
  } else if (isIP(listenHost) !== 0) out.add(listenHost);
  return [...out];
}

/** The instance records of this host that carry a runtime handle (started by an earlier agent process). */
async function survivors(store: StateStore, host: string): Promise<InstanceRecord[]> {
  const out: InstanceRecord[] = [];
  for (const r of await store.list('instances/')) {
    try {
      const rec = JSON.parse(r.value) as InstanceRecord;
      if (rec.host === host && rec.handle && !['stopped', 'failed'].includes(rec.phase)) out.push(rec);
    } catch {
      // not an instance record: not ours to adopt
    }
  }
  return out;
}

/**
 * `understudy agent`: runs the instances placed on one host. Starts a `LocalAgent` and serves it over
 * the agent API (authenticated by the cluster key), adopts the instances earlier agent processes of this
 * host started (instead of restarting them), and keeps `hosts/<name>` in the store under a lease it
 * renews. SIGTERM/SIGINT stop it: the record goes, and the instances stop — or, with
 * `--leave-running`, a planned restart: the instances keep running and the record stays, marked
 * restarting, for `--restart-grace` (control holds the host's suspicion until then).
 */
export async function runAgent(options: AgentCommandOptions): Promise<number> {
  let stopping: string | undefined;
  let wake: (reason: string) => void = () => undefined;
  const stopRequested = new Promise<string>((r) => (wake = r));
  const onSignal = (signal: NodeJS.Signals): void => {
    stopping ??= signal;
    wake(signal);
  };
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const s of signals) process.on(s, onSignal);
  const cleanup: (() => Promise<void>)[] = [];
  const leaseTtlMs = options.leaseTtlMs ?? 10_000;
  let leaveRunning = options.leaveRunning ?? false;
  /** Whether this stop is a planned restart (the instances run on for the next agent to adopt). */
  let plannedRestart = leaveRunning;
  const restartGraceMs = options.restartGraceMs ?? 30_000;
  try {
    if (!HOST_NAME.test(options.host))
      throw new UnderstudyError(
        ErrorCode.Usage,
        `--host '${options.host}': a host name is letters, digits, '.', '_' and '-' (at most 63)`,
      );
    if (!Number.isInteger(restartGraceMs) || restartGraceMs < 0 || restartGraceMs > MAX_RESTART_GRACE_MS)
      throw new UnderstudyError(
        ErrorCode.Usage,
        `--restart-grace ${restartGraceMs} ms: a planned restart's window is 0 (none) to ${MAX_RESTART_GRACE_MS / 1000} s`,
      );
    const listen = parseListen(options.listen ?? '127.0.0.1:0');
    const wildcard = ['0.0.0.0', '::', ''].includes(listen.host);
    const address = options.address ?? (wildcard ? LOOPBACK : listen.host);
    const etcd = isEtcdUrl(options.store);
    if (etcd && !options.clusterKey)
      throw new UnderstudyError(
        ErrorCode.Usage,
        '--cluster-key FILE is needed with an etcd store (the key is never kept in the store)',
      );
    const keyFile = resolve(options.clusterKey ?? clusterKeyPath(resolve(options.store)));
    // The first process of a cluster creates the key; with an explicit file it must be there already.
    const secret = options.clusterKey ? readClusterKey(keyFile) : ensureClusterKey(keyFile);
    const { store } = await openStore(options.store);
    cleanup.push(() => store.close());

    const existing = parseHostRecord((await store.get(hostKey(options.host)))?.value ?? '');
    if (existing && existing.pid !== process.pid && isLocalProcessAlive(existing.pid))
      throw new UnderstudyError(
        ErrorCode.AlreadyRunning,
        `an agent for host '${options.host}' already runs (pid ${existing.pid}, API ${existing.url})`,
        { details: { pid: existing.pid } },
      );

    // TLS before anything runs: a bad or foreign CA stops the agent here.
    const useTls = options.tls ?? etcd;
    if (!useTls && etcd)
      process.stderr.write(
        'understudy agent: warning: TLS is off (--no-tls): the agent API, with the cluster key on every request, travels in clear\n',
      );
    const tls = useTls
      ? await clusterTlsIdentity({
          clusterKeyFile: keyFile,
          name: options.host,
          ips: certificateAddresses(listen.host, address),
          store,
        })
      : undefined;
    const runtime = await ProcessRuntime.create();
    const agent = new LocalAgent({ runtime, host: options.host, address });
    cleanup.push(() =>
      agent.close(leaveRunning ? { leaveRunning: true } : { graceMs: options.stopGraceMs ?? 5000 }),
    );
    // Adopted before the API serves: a control that connects sees them as this agent's instances.
    const found = await survivors(store, options.host);
    let adopted = 0;
    for (const rec of found) {
      if (await agent.adopt(rec.handle!).catch(() => false)) {
        adopted++;
        process.stdout.write(`understudy agent: adopted ${rec.id} (pid ${rec.handle!.pid})\n`);
      } else process.stdout.write(`understudy agent: ${rec.id} (pid ${rec.handle!.pid}) is gone\n`);
    }

    const ingress =
      tls && options.ingress !== false
        ? new TlsIngress({ agent, log: (line) => process.stderr.write(`${line}\n`) })
        : undefined;
    const server = await AgentServer.start({
      agent,
      secret,
      ...(tls ? { tls } : {}),
      ...(ingress ? { ingress } : {}),
      listen: options.listen ?? '127.0.0.1:0',
      onClosed: () => wake('closed by the control plane'),
    });
    cleanup.push(() => server.close());
    // Closed before the server (cleanups run in reverse): the connections it pipes are the server's,
    // and a router keeps them open (keep-alive), so the server's close would wait for them.
    if (ingress) cleanup.push(async () => ingress.close());

    const record: HostRecord = {
      host: options.host,
      url: server.url,
      address,
      ...(ingress ? { ingress: true } : {}),
      ...(options.zone ? { zone: options.zone } : {}),
      runtime: agent.runtimeName,
      cores: cpus().length,
      memoryBytes: totalmem(),
      pid: process.pid,
      startedAt: Date.now(),
    };
    // The lease (renewed every third of its TTL, registered again after a lapse) and self-fencing:
    // cut off from the store and from every other host for fenceAfterMs (< TTL), the agent fences its
    // primaries before the lease can lapse and an echo elsewhere be promoted.
    const lease = new HostLease({
      store,
      record,
      ttlMs: leaseTtlMs,
      ...(options.fenceAfterMs !== undefined ? { fenceAfterMs: options.fenceAfterMs } : {}),
      fence: (id) => agent.fence(id),
      stop: async (id) => void (await agent.stop(id, { graceMs: options.stopGraceMs ?? 5000 })),
      runs: async (id) => {
        const h = await agent.instance(id);
        return h !== undefined && h.exit === undefined;
      },
      log: (line) => process.stderr.write(`understudy agent: ${line}\n`),
    });
    await lease.start();
    // A planned restart hands over (the record stays, marked restarting, for the grace); else it leaves.
    cleanup.push(async () => {
      const until = await lease.close(plannedRestart ? { restartGraceMs } : {});
      if (until !== undefined)
        process.stdout.write(
          `understudy agent: planned restart of host ${options.host}: instances keep running; control waits for an agent until ${new Date(until).toISOString()} (--restart-grace ${restartGraceMs} ms)\n`,
        );
    });

    process.stdout.write(
      `understudy agent: host ${options.host} serving ${server.url} (instances at ${address}; ${adopted} adopted; store ${options.store}; key ${keyFile}${tls ? `; TLS under ${tls.caFile}, CA SHA-256 ${tls.fingerprint}` : ''}${ingress ? '; TLS ingress to its instances on the same port' : ''})\n`,
    );
    const reason = await stopRequested;
    if (reason === 'closed by the control plane') {
      leaveRunning = true; // already stopped by control
      plannedRestart = false;
    }
    process.stdout.write(
      `understudy agent: stopping (${reason})${leaveRunning ? '; instances keep running' : ''}\n`,
    );
    return ExitCode.Ok;
  } catch (err) {
    return reportError(err);
  } finally {
    for (const c of cleanup.reverse()) await c().catch((e: unknown) => void reportError(e));
    for (const s of signals) process.off(s, onSignal);
  }
}
