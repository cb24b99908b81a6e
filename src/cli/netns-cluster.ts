// The start-up of an Understudy cluster on real hosts (network namespaces of a ../netns-lab.ts lab),
// shared by the hosts demo (`understudy demo --part hosts`, ./commands/demo-hosts.ts) and the tests'
// harness (test/lib/netns-cluster.ts): an etcd cluster with one member per namespace given (one for
// the demo, three for the chaos tests), `understudy agent`s and `understudy control` replicas started
// inside namespaces with their output kept, and the kv example's spec in hot write-through mode.
// Everything started here is a child of the lab: `lab.close()` stops it.
import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ErrorCode, UnderstudyError } from '../errors/index.js';
import type { NetnsLab } from './netns-lab.js';

/** The etcd client port inside each member's namespace. */
export const NETNS_ETCD_CLIENT_PORT = 2379;
/** The etcd peer port inside each member's namespace. */
export const NETNS_ETCD_PEER_PORT = 2380;

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
/** The CLI's entry point (`bin/understudy.js`), run with the current Node. */
export const netnsCliBin = join(repoRoot, 'bin', 'understudy.js');
/** The kv example's directory. */
export const netnsKvDir = join(repoRoot, 'examples', 'kv');

/** A process started inside a namespace, with its stdout and stderr kept. */
export interface NetnsProc {
  readonly child: ChildProcess;
  /** Everything it printed so far (stdout and stderr interleaved). */
  out(): string;
}

/** Waits until `fn` holds, checking every 50 ms; false when `ms` passed or `signal` aborted first. */
export async function netnsUntil(
  fn: () => boolean | Promise<boolean>,
  ms: number,
  signal?: AbortSignal,
): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!signal?.aborted) {
    if (
      await Promise.resolve()
        .then(fn)
        .catch(() => false)
    )
      return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

/** Starts `node args` inside `host`'s namespace (cwd: the repository), its output kept. */
export function startNetnsNode(
  lab: NetnsLab,
  host: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): NetnsProc {
  const child = lab.exec(host, process.execPath, args, {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
    env,
  });
  let out = '';
  child.stdout?.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr?.on('data', (b: Buffer) => (out += b.toString()));
  return { child, out: () => out };
}

/** Options of {@link startNetnsEtcd}. */
export interface NetnsEtcdOptions {
  /** The namespaces (lab host names) that each run one member, named after them (1, 3 or 5). */
  members: readonly string[];
  /** Where the members keep their data (`<dir>/etcd-<member>`). */
  dataDir: string;
  /** The etcd binary. @default process.env.UNDERSTUDY_ETCD_BIN ?? '/usr/bin/etcd' */
  binary?: string;
  /** Raft heartbeat, ms. @default 50 */
  heartbeatMs?: number;
  /** Raft election timeout, ms. @default 500 */
  electionTimeoutMs?: number;
}

/** An etcd cluster across namespaces (see {@link startNetnsEtcd}). */
export interface NetnsEtcd {
  /** Member name (its namespace) → client endpoint `address:2379`. */
  readonly endpoints: ReadonlyMap<string, string>;
  /** The `--store` connection string naming every member: `etcd://a:2379,b:2379,c:2379`. */
  readonly url: string;
  /** Member name → its process (the latest one, after {@link NetnsEtcd.restart}). */
  readonly processes: ReadonlyMap<string, ChildProcess>;
  /** SIGKILLs one member (an etcd member lost); its data stays. */
  kill(member: string): void;
  /** Starts a killed member again on its data (it rejoins the cluster). */
  restart(member: string): void;
  /** Whether `member` answers `etcdctl endpoint health` (from inside its own namespace). */
  healthy(member: string): boolean;
  /** The member that is the raft leader now, as `etcdctl endpoint status` of every reachable member says. */
  leader(): string | undefined;
}

/**
 * Starts one etcd member in each namespace of `members` (clients and peers on the namespace's own
 * address, so a cut link cuts that member off like any host) and waits until every member is healthy.
 * Rejects after 30 s with what etcd printed; the members are children of the lab either way.
 */
export async function startNetnsEtcd(lab: NetnsLab, options: NetnsEtcdOptions): Promise<NetnsEtcd> {
  const { members } = options;
  if (members.length === 0 || members.length % 2 === 0)
    throw new UnderstudyError(
      ErrorCode.Usage,
      `an etcd cluster has an odd number of members, not ${members.length}`,
    );
  const binary = options.binary ?? process.env.UNDERSTUDY_ETCD_BIN ?? '/usr/bin/etcd';
  const peer = (m: string): string => `http://${lab.address(m)}:${NETNS_ETCD_PEER_PORT}`;
  const client = (m: string): string => `http://${lab.address(m)}:${NETNS_ETCD_CLIENT_PORT}`;
  const initialCluster = members.map((m) => `${m}=${peer(m)}`).join(',');
  const token = `us-${randomUUID()}`;
  const processes = new Map<string, ChildProcess>();
  const logs = new Map<string, string>();
  const launch = (m: string, state: 'new' | 'existing'): void => {
    const child = lab.exec(
      m,
      binary,
      [
        `--name=${m}`,
        `--data-dir=${join(options.dataDir, `etcd-${m}`)}`,
        `--listen-client-urls=${client(m)}`,
        `--advertise-client-urls=${client(m)}`,
        `--listen-peer-urls=${peer(m)}`,
        `--initial-advertise-peer-urls=${peer(m)}`,
        `--initial-cluster=${initialCluster}`,
        `--initial-cluster-token=${token}`,
        `--initial-cluster-state=${state}`,
        `--heartbeat-interval=${options.heartbeatMs ?? 50}`,
        `--election-timeout=${options.electionTimeoutMs ?? 500}`,
        '--log-level=error',
        '--logger=zap',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    child.stderr?.on('data', (b: Buffer) => logs.set(m, ((logs.get(m) ?? '') + b.toString()).slice(-2000)));
    processes.set(m, child);
  };
  for (const m of members) launch(m, 'new');
  const etcdctl = (m: string, args: string[]): { status: number | null; stdout: string } =>
    lab.run(m, 'etcdctl', [`--endpoints=${client(m)}`, '--dial-timeout=1s', '--command-timeout=2s', ...args]);
  const cluster: NetnsEtcd = {
    endpoints: new Map(members.map((m) => [m, `${lab.address(m)}:${NETNS_ETCD_CLIENT_PORT}`])),
    url: `etcd://${members.map((m) => `${lab.address(m)}:${NETNS_ETCD_CLIENT_PORT}`).join(',')}`,
    processes,
    kill: (m) => void processes.get(m)?.kill('SIGKILL'),
    restart: (m) => launch(m, 'existing'),
    healthy: (m) => etcdctl(m, ['endpoint', 'health']).status === 0,
    leader: () => {
      for (const m of members) {
        const r = etcdctl(m, ['endpoint', 'status', '-w', 'json']);
        if (r.status !== 0) continue;
        try {
          const [s] = JSON.parse(r.stdout) as { Status: { header: { member_id: number }; leader: number } }[];
          if (s && s.Status.leader === s.Status.header.member_id) return m;
        } catch {
          // not JSON: try the next member
        }
      }
      return undefined;
    },
  };
  const up = await netnsUntil(() => members.every((m) => cluster.healthy(m)), 30_000);
  if (!up)
    throw new UnderstudyError(
      ErrorCode.StoreUnavailable,
      `etcd did not become healthy on ${members.join(', ')} within 30 s: ${[...logs].map(([m, l]) => `${m}: ${l.trim()}`).join('; ')}`,
    );
  return cluster;
}

/**
 * Writes the kv example's spec to `file`: hot echo, write-through, its router on `0.0.0.0:<routerPort>`
 * of whichever namespace runs the leading control replica, health checked every 200 ms; `extra` are more
 * settings of the service, YAML lines as they would stand under it (e.g. `shadow: { count: 2 }`);
 * `echo` replaces its `echo:` setting (YAML flow), e.g. a warm echo kept by file sync.
 */
export function writeNetnsKvSpec(
  file: string,
  routerPort: number,
  extra: readonly string[] = [],
  echo = '{ count: 1, mode: hot, consistency: write-through }',
): void {
  writeFileSync(
    file,
    `services:
  - name: kv
    command: [node, server.mjs, --port, '{port}', --state, '{stateDir}', --host, '0.0.0.0']
    cwd: ${netnsKvDir}
    ports: { http: 0 }
    routing: { listen: '0.0.0.0:${routerPort}' }
    health: { http: { path: /healthz }, interval: 200ms, timeout: 300ms, failureThreshold: 2 }
    echo: ${echo}
    restart: { backoff: 50ms, maxRestarts: 50 }
${extra.map((line) => `    ${line}\n`).join('')}`,
  );
}

/** Options of {@link startNetnsAgent}. */
export interface NetnsAgentOptions {
  /** The `--store` connection string. */
  store: string;
  /** The host (its namespace) the agent runs on and names itself after. */
  host: string;
  /** Its zone. @default '' */
  zone?: string;
  /** The cluster key file. */
  clusterKey: string;
  /** The TTL of its host lease, ms. @default 2000 */
  leaseTtlMs?: number;
  /** On SIGTERM, leave its instances running for the next agent to adopt (`--leave-running`). @default false */
  leaveRunning?: boolean;
  /** The environment it runs with. @default process.env */
  env?: NodeJS.ProcessEnv;
}

/** Starts `understudy agent` inside `host`'s namespace on its address; waits until it serves (false: it did not in 20 s). */
export async function startNetnsAgent(
  lab: NetnsLab,
  options: NetnsAgentOptions,
  signal?: AbortSignal,
): Promise<{ proc: NetnsProc; serving: boolean }> {
  const proc = startNetnsNode(
    lab,
    options.host,
    [
      netnsCliBin,
      'agent',
      ...['--store', options.store, '--host', options.host, '--zone', options.zone ?? ''],
      ...['--listen', `${lab.address(options.host)}:0`, '--cluster-key', options.clusterKey],
      ...['--lease-ttl', `${options.leaseTtlMs ?? 2000}ms`],
      ...(options.leaveRunning ? ['--leave-running'] : []),
    ],
    options.env,
  );
  const serving = await netnsUntil(() => /serving http/.test(proc.out()), 20_000, signal);
  return { proc, serving };
}

/** Options of {@link startNetnsControl}. */
export interface NetnsControlOptions {
  /** The spec file. */
  spec: string;
  /** The `--store` connection string. */
  store: string;
  /** The replica's name (unique among the replicas). */
  name: string;
  /** The cluster key file. */
  clusterKey: string;
  /** Its data directory. */
  dataDir: string;
  /** How long a lost host's instances wait before moving (`--replace-lost-after`), ms. @default 20000 */
  replaceLostAfterMs?: number;
  /** TTL of the control leader's lease (`--lease-ttl`, whole seconds on etcd), ms. @default the CLI's (3 s) */
  leaderTtlMs?: number;
  /** The environment it runs with. @default process.env */
  env?: NodeJS.ProcessEnv;
}

/** Starts an `understudy control` replica inside namespace `ns` (its API on 127.0.0.1 there). */
export function startNetnsControl(lab: NetnsLab, ns: string, options: NetnsControlOptions): NetnsProc {
  return startNetnsNode(
    lab,
    ns,
    [
      netnsCliBin,
      'control',
      options.spec,
      ...['--store', options.store, '--name', options.name, '--api', '127.0.0.1:0'],
      ...['--cluster-key', options.clusterKey, '-d', options.dataDir],
      ...['--replace-lost-after', `${options.replaceLostAfterMs ?? 20_000}ms`],
      ...(options.leaderTtlMs !== undefined ? ['--lease-ttl', `${options.leaderTtlMs}ms`] : []),
    ],
    options.env,
  );
}
