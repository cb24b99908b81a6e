// The peer tools each benchmark runs beside Understudy, and their installation with apt-get when
// missing (as scripts/setup.sh does for the tests), so that `npm run bench -- <name>` works on a fresh
// Debian machine instead of stopping with a message.
import { spawnSync } from 'node:child_process';

/** A command a benchmark runs, and the Debian package that provides it. */
export interface Peer {
  command: string;
  package: string;
}

/**
 * Peer tools per benchmark. A benchmark not listed needs none. Add a row when a benchmark starts
 * another program (the bench's own check stays, for a machine where installing is not allowed).
 */
export const BENCH_PEERS: Readonly<Record<string, readonly Peer[]>> = {
  router: [
    { command: 'wrk', package: 'wrk' },
    { command: 'haproxy', package: 'haproxy' },
  ],
  sync: [{ command: 'rsync', package: 'rsync' }],
  hosts: [
    { command: 'rsync', package: 'rsync' },
    { command: 'ip', package: 'iproute2' },
  ],
  'control-ha': [{ command: 'etcd', package: 'etcd-server' }],
  peers: [
    { command: 'redis-server', package: 'redis-server' },
    { command: 'redis-sentinel', package: 'redis-sentinel' },
    // PostgreSQL's server programs are off PATH (/usr/lib/postgresql/<v>/bin); postgresql-common's
    // pg_ctlcluster comes with the server package.
    { command: 'pg_ctlcluster', package: 'postgresql' },
    { command: 'patroni', package: 'patroni' },
    { command: 'haproxy', package: 'haproxy' },
    { command: 'etcd', package: 'etcd-server' },
    // The partition fault's hosts are network namespaces (bench/lib/peers-partition.ts).
    { command: 'ip', package: 'iproute2' },
  ],
};

/** Whether `command` is on PATH. */
export function commandExists(command: string): boolean {
  return spawnSync('sh', ['-c', 'command -v "$1"', 'sh', command], { stdio: 'ignore' }).status === 0;
}

/** The peers of benchmark `name` that are not installed. */
export function missingPeers(name: string, exists: (command: string) => boolean = commandExists): Peer[] {
  return (BENCH_PEERS[name] ?? []).filter((p) => !exists(p.command));
}

/** The commands that install `packages` (with sudo unless root): `apt-get update`, then `apt-get install`. */
export function aptCommands(packages: readonly string[], root: boolean): string[][] {
  const sudo = root ? [] : ['sudo'];
  return [
    [...sudo, 'apt-get', 'update', '-qq'],
    [
      ...sudo,
      'env',
      'DEBIAN_FRONTEND=noninteractive',
      'apt-get',
      'install',
      '-y',
      '-qq',
      '--no-install-recommends',
      ...packages,
    ],
  ];
}

/** Options of {@link ensurePeers}. */
export interface EnsurePeersOptions {
  /** Says whether a command is on PATH. @default {@link commandExists} */
  exists?: (command: string) => boolean;
  /** Runs one command; returns its exit status. @default spawnSync, output inherited */
  run?: (argv: string[]) => number | null;
  /** Whether this process runs as root (no sudo). @default process.getuid() === 0 */
  root?: boolean;
  /** Where progress goes. @default stderr */
  log?: (line: string) => void;
}

/**
 * Installs the missing peers of benchmark `name` with apt-get. Returns the peers still missing
 * afterwards (empty: all there); never throws.
 */
export function ensurePeers(name: string, options: EnsurePeersOptions = {}): Peer[] {
  const exists = options.exists ?? commandExists;
  const log = options.log ?? ((line: string) => process.stderr.write(line + '\n'));
  const missing = missingPeers(name, exists);
  if (missing.length === 0) return [];
  const packages = [...new Set(missing.map((p) => p.package))];
  const run =
    options.run ??
    ((argv: string[]) =>
      spawnSync(argv[0]!, argv.slice(1), { stdio: ['ignore', 'ignore', 'inherit'] }).status);
  const root = options.root ?? process.getuid?.() === 0;
  log(`bench ${name}: installing Debian packages: ${packages.join(' ')}`);
  for (const argv of aptCommands(packages, root)) {
    const status = run(argv);
    if (status !== 0) {
      log(`bench ${name}: '${argv.join(' ')}' failed (exit ${status ?? 'signal'})`);
      break;
    }
  }
  return missingPeers(name, exists);
}

/** Options of {@link startWithRetries}. */
export interface StartWithRetriesOptions {
  /** Progress lines (a failed attempt and its error). */
  log: (line: string) => void;
  /** Names the system in those lines, e.g. `peers-redis: understudy (external, REPLICAOF)`. */
  what: string;
  /** Starts in all. @default 3 */
  attempts?: number;
}

/**
 * Starts the system of one bench run, again when it does not come up (a loaded machine), `attempts`
 * times in all: the start is not what a bench measures. `start` gets the attempt number (from 1) and
 * must leave nothing running when it throws. Thrown: the last attempt's error.
 */
export async function startWithRetries<T>(
  start: (attempt: number) => Promise<T>,
  options: StartWithRetriesOptions,
): Promise<T> {
  const attempts = options.attempts ?? 3;
  for (let attempt = 1; ; attempt++) {
    try {
      return await start(attempt);
    } catch (err) {
      if (attempt >= attempts) throw err;
      options.log(`${options.what}: start attempt ${attempt} failed (${(err as Error).message}); again`);
    }
  }
}
