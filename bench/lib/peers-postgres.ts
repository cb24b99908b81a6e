// The PostgreSQL peer of the head-to-head bench (issue 19): Patroni 3 on etcd with two nodes and
// HAProxy routing to the primary by Patroni's REST health check (`OPTIONS /primary`, inter 3s fall 3
// rise 2, on-marked-down shutdown-sessions: Patroni's documented haproxy.cfg), as its users deploy it.
// A client inserts unique ids through HAProxy, one autocommit INSERT at a time, reconnecting at once
// when its connection drops. Faults: SIGKILL of the primary node (the Patroni agent and its PostgreSQL,
// every process, at once = node death) and SIGSTOP of the same for `stopMs`. Measured per run: fault
// → first acknowledged insert, acknowledged ids missing afterwards (read back through HAProxy), and
// split brain (an insert the old primary acknowledged after the fault, gone afterwards: it was
// acknowledged by a deposed primary while the other node was primary).
// Everything runs on 127.0.0.1 with free ports and temporary directories, and is stopped in every path.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  chownSync,
  closeSync,
  existsSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, startEtcd, type EtcdServer } from '../../test/lib/etcd-server.js';
import { percentile } from './failover-load.js';
import { patroniConfig } from './patroni-config.js';

/** One row of the peers bench (the shape bench/peers.ts prints). */
export interface PeerRow {
  system: string;
  service: 'postgres';
  fault: 'sigkill' | 'sigstop';
  runs: number;
  /** Fault → first acknowledged insert, median over the runs (ms). */
  p50Ms: number;
  /** The same, 99th percentile (nearest rank: the worst run below 100 runs). */
  p99Ms: number;
  /** Acknowledged inserts missing afterwards, summed over the runs. */
  lostAcked: number;
  /**
   * Inserts the old primary acknowledged after the fault that are gone afterwards (it acknowledged them
   * while the other node was primary: two primaries), summed.
   */
  splitBrain: number;
  /** Why the row is empty (a tool missing, a run that failed). */
  skipped?: string;
}

/** A Patroni configuration under test. */
export interface PatroniSettings {
  /** Row name. */
  system: string;
  ttl: number;
  loopWait: number;
  retryTimeout: number;
}

/** Patroni's defaults, and the tightest settings its documentation allows (loop_wait + 2 × retry_timeout < ttl). */
export const PATRONI_SETTINGS: readonly PatroniSettings[] = [
  { system: 'patroni (ttl 30, loop_wait 10, retry_timeout 10)', ttl: 30, loopWait: 10, retryTimeout: 10 },
  { system: 'patroni (ttl 10, loop_wait 2, retry_timeout 3)', ttl: 10, loopWait: 2, retryTimeout: 3 },
];

/** Options of {@link runPostgresPeers}. */
export interface PostgresPeersOptions {
  /** Runs per configuration and fault. @default 10 */
  runs?: number;
  /** How long SIGSTOP holds the primary (ms). @default 20000 */
  stopMs?: number;
  /** Configurations. @default {@link PATRONI_SETTINGS} */
  settings?: readonly PatroniSettings[];
  /** Faults. @default ['sigkill', 'sigstop'] */
  faults?: readonly ('sigkill' | 'sigstop')[];
  /** Progress lines. @default stderr */
  log?: (line: string) => void;
  /** Only the configurations whose system name contains one of these. @default all */
  systems?: readonly string[] | undefined;
}

const PROGRAMS = ['postgres', 'initdb', 'pg_ctl', 'pg_rewind', 'pg_basebackup', 'psql'];

/** The PostgreSQL server programs' directory (Debian: /usr/lib/postgresql/<v>/bin), newest first. */
export function postgresBin(): string | undefined {
  for (const v of ['17', '16', '15', '14', '13']) {
    const bin = `/usr/lib/postgresql/${v}/bin`;
    if (PROGRAMS.every((c) => existsSync(join(bin, c)))) return bin;
  }
  return undefined;
}

const which = (cmd: string): boolean =>
  spawnSync('sh', ['-c', 'command -v "$1"', 'sh', cmd], { stdio: 'ignore' }).status === 0;

/** Every descendant of `pid` (children, grandchildren, …), from /proc. */
export function descendants(pid: number): number[] {
  const parent = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'latin1');
      parent.set(Number(entry), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // gone
    }
  }
  const out: number[] = [];
  const walk = (p: number): void => {
    for (const [child, ppid] of parent) {
      if (ppid !== p) continue;
      out.push(child);
      walk(child);
    }
  };
  walk(pid);
  return out;
}

/** Sends `signal` to processes and all their descendants (SIGKILL: stopped first, so none escapes). */
export function signalTree(pids: number[], signal: 'SIGKILL' | 'SIGSTOP' | 'SIGCONT'): void {
  const all = pids.filter((p) => p > 0).flatMap((p) => [p, ...descendants(p)]);
  const send = (sig: NodeJS.Signals): void => {
    for (const p of all) {
      try {
        process.kill(p, sig);
      } catch {
        // gone
      }
    }
  };
  if (signal === 'SIGKILL') send('SIGSTOP');
  send(signal);
}

/**
 * A node's processes: the Patroni agent and its PostgreSQL. Patroni starts the postmaster detached
 * (its parent is init), so it is found by its data directory's postmaster.pid.
 */
function nodePids(n: Node): number[] {
  const pids = [n.child?.exitCode === null && n.child.signalCode === null ? (n.child.pid ?? 0) : 0];
  try {
    pids.push(Number(readFileSync(join(n.dir, 'postmaster.pid'), 'utf8').split('\n')[0]));
  } catch {
    // PostgreSQL not running
  }
  return pids.filter((p) => Number.isInteger(p) && p > 0);
}

interface Node {
  name: string;
  pgPort: number;
  restPort: number;
  dir: string;
  config: string;
  child?: ChildProcess;
}

/** One acknowledged insert: its id, the server port that acknowledged it, when (ms). */
export interface Ack {
  id: number;
  port: number;
  at: number;
}

/**
 * A client inserting unique ids through `port` (HAProxy): one psql session feeding autocommit inserts,
 * each `RETURNING inet_server_port()` (which node acknowledged it); a new session at once when one ends.
 */
export class InsertClient {
  readonly acks: Ack[] = [];
  private next = 1;
  private child: ChildProcess | undefined;
  private stopped = false;
  private readonly done: Promise<void>;

  constructor(
    private readonly bin: string,
    private readonly port: number,
  ) {
    this.done = this.loop();
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      await this.session();
      if (!this.stopped) await new Promise((r) => setTimeout(r, 20));
    }
  }

  private session(): Promise<void> {
    return new Promise((resolve) => {
      const child = spawn(
        join(this.bin, 'psql'),
        ['-X', '-q', '-t', '-A', '-v', 'ON_ERROR_STOP=1', '-h', '127.0.0.1', '-p', String(this.port)],
        {
          stdio: ['pipe', 'pipe', 'ignore'],
          env: { ...process.env, PGUSER: 'postgres', PGDATABASE: 'postgres', PGCONNECT_TIMEOUT: '2' },
        },
      );
      this.child = child;
      let carry = '';
      let inFlight = 0;
      const send = (): void => {
        if (!child.stdin.writable || inFlight > 0) return;
        inFlight = 1;
        child.stdin.write(`INSERT INTO ids VALUES (${this.next}) RETURNING id, inet_server_port();\n`);
      };
      child.stdin.on('error', () => undefined);
      child.stdout.on('data', (c: Buffer) => {
        const lines = (carry + c.toString()).split('\n');
        carry = lines.pop() ?? '';
        for (const line of lines) {
          const m = /^(\d+)\|(\d+)$/.exec(line.trim());
          if (!m) continue;
          this.acks.push({ id: Number(m[1]), port: Number(m[2]), at: Date.now() });
          this.next = Number(m[1]) + 1;
          inFlight = 0;
        }
        send();
      });
      child.on('exit', () => {
        // The id in flight has an unknown outcome: never reused, never counted as acknowledged.
        if (inFlight > 0) this.next++;
        resolve();
      });
      send();
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.child?.kill('SIGKILL');
    await this.done;
  }
}

/** The Patroni cluster of one configuration: etcd, two nodes, HAProxy. */
class PatroniCluster {
  private haproxy: ChildProcess | undefined;
  haproxyPort = 0;

  private constructor(
    private readonly bin: string,
    private readonly work: string,
    private readonly etcd: EtcdServer,
    readonly nodes: Node[],
    private readonly settings: PatroniSettings,
  ) {}

  static async start(bin: string, settings: PatroniSettings): Promise<PatroniCluster> {
    const work = mkdtempSync(join(tmpdir(), 'understudy-patroni-'));
    const ids = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
    const root = process.getuid?.() === 0;
    if (root && ids.status === 0) chownSync(work, Number(ids.stdout.trim()), Number(ids.stdout.trim()));
    const etcd = await startEtcd({ heartbeatMs: 100, electionTimeoutMs: 1000 });
    const nodes: Node[] = [];
    for (const name of ['node1', 'node2']) {
      nodes.push({
        name,
        pgPort: await freePort(),
        restPort: await freePort(),
        dir: join(work, name),
        config: join(work, `${name}.yml`),
      });
    }
    const cluster = new PatroniCluster(bin, work, etcd, nodes, settings);
    try {
      for (const n of nodes) cluster.writeConfig(n);
      if (root) spawnSync('chown', ['-R', 'postgres:postgres', work]);
      cluster.startNode(nodes[0] as Node);
      await cluster.waitRole(nodes[0] as Node, 'primary', 90_000);
      cluster.startNode(nodes[1] as Node);
      await cluster.waitRole(nodes[1] as Node, 'replica', 120_000);
      await cluster.startHaproxy();
      const leader = await cluster.leader();
      cluster.sql(leader.pgPort, 'CREATE TABLE IF NOT EXISTS ids (id bigint PRIMARY KEY)');
      return cluster;
    } catch (err) {
      await cluster.close(true);
      throw new Error(`${(err as Error).message} (logs: ${work})`, { cause: err });
    }
  }

  private writeConfig(n: Node): void {
    writeFileSync(
      n.config,
      patroniConfig(
        {
          name: n.name,
          work: this.work,
          address: '127.0.0.1',
          restPort: n.restPort,
          pgPort: n.pgPort,
          dataDir: n.dir,
          bin: this.bin,
          etcd: this.etcd.endpoint,
          socketDir: this.work,
          trust: '127.0.0.1/32',
        },
        this.settings,
      ),
    );
  }

  startNode(n: Node): void {
    mkdirLog(join(this.work, `${n.name}-log`));
    const args = ['patroni', n.config];
    const [cmd, ...rest] =
      process.getuid?.() === 0
        ? ['setpriv', '--reuid=postgres', '--regid=postgres', '--init-groups', '--', ...args]
        : args;
    // PostgreSQL's own log goes to Patroni's output (Patroni sets no logging_collector): kept per node,
    // appended across restarts, beside Patroni's log (<node>-log/patroni.log).
    const out = openSync(join(this.work, `${n.name}-postgres.log`), 'a');
    try {
      n.child = spawn(cmd ?? 'patroni', rest, { stdio: ['ignore', out, out], cwd: this.work });
    } finally {
      closeSync(out);
    }
  }

  /** The role a node's REST API reports (`primary`, `replica`), or undefined when it does not answer. */
  async role(n: Node): Promise<string | undefined> {
    try {
      const res = await fetch(`http://127.0.0.1:${n.restPort}/patroni`, {
        signal: AbortSignal.timeout(1000),
      });
      const body = (await res.json()) as { role?: string; state?: string };
      if (body.state !== 'running') return undefined;
      // Patroni 3.0 says `master`; later versions `primary`.
      return body.role === 'master' ? 'primary' : body.role;
    } catch {
      return undefined;
    }
  }

  async waitRole(n: Node, role: string, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while ((await this.role(n)) !== role) {
      if (Date.now() > deadline)
        throw new Error(`patroni ${n.name} did not become ${role} within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  async leader(): Promise<Node> {
    for (const n of this.nodes) if ((await this.role(n)) === 'primary') return n;
    throw new Error('no Patroni primary');
  }

  sql(port: number, statement: string): string {
    const r = spawnSync(
      join(this.bin, 'psql'),
      [
        '-X',
        '-q',
        '-t',
        '-A',
        '-h',
        '127.0.0.1',
        '-p',
        String(port),
        '-U',
        'postgres',
        '-d',
        'postgres',
        '-c',
        statement,
      ],
      { encoding: 'utf8', timeout: 30_000, env: { ...process.env, PGCONNECT_TIMEOUT: '3' } },
    );
    if (r.status !== 0) throw new Error(`psql on ${port}: ${r.stderr.trim()}`);
    return r.stdout.trim();
  }

  private async startHaproxy(): Promise<void> {
    this.haproxyPort = await freePort();
    const cfg = join(this.work, 'haproxy.cfg');
    writeFileSync(
      cfg,
      `global
  maxconn 100
  log stdout format raw local0 info
defaults
  log global
  mode tcp
  retries 2
  timeout client 30m
  timeout connect 4s
  timeout server 30m
  timeout check 5s
listen primary
  bind 127.0.0.1:${this.haproxyPort}
  option httpchk OPTIONS /primary
  http-check expect status 200
  default-server inter 3s fall 3 rise 2 on-marked-down shutdown-sessions
${this.nodes.map((n) => `  server ${n.name} 127.0.0.1:${n.pgPort} maxconn 100 check port ${n.restPort}`).join('\n')}
`,
    );
    // Its health-check transitions ("Server primary/node1 is DOWN") go to haproxy.log.
    const out = openSync(join(this.work, 'haproxy.log'), 'a');
    try {
      this.haproxy = spawn('haproxy', ['-f', cfg, '-db'], { stdio: ['ignore', out, out] });
    } finally {
      closeSync(out);
    }
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        if (this.sql(this.haproxyPort, 'SELECT 1') === '1') return;
      } catch {
        // not routed yet (rise 2 × inter 3s)
      }
      if (Date.now() > deadline) throw new Error('HAProxy never routed to the Patroni primary');
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  /**
   * Waits until both nodes run, HAProxy routes writes, and the replica streams from the primary and has
   * replayed all it wrote so far. A replica Patroni reports as `replica` may not stream yet: the leader
   * creates its replication slot only at its next HA loop (up to loop_wait, 10 s by default), and until
   * then the replica's walreceiver is refused ("replication slot does not exist"). A fault then would
   * leave Patroni to promote a replica that never received a byte (its lag is judged against the leader
   * position last written to etcd, itself up to loop_wait old): the defaults' rows once came back empty
   * that way — the new primary had no table `ids`, every insert failed.
   */
  async healthy(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const roles = await Promise.all(this.nodes.map((n) => this.role(n)));
      let routed = false;
      let replicating = false;
      try {
        routed = this.sql(this.haproxyPort, 'SELECT NOT pg_is_in_recovery()') === 't';
        const primary = this.nodes[roles.indexOf('primary')];
        const replica = this.nodes[roles.indexOf('replica')];
        if (routed && primary && replica) {
          const lsn = this.sql(
            primary.pgPort,
            `SELECT pg_current_wal_lsn() FROM pg_stat_replication WHERE application_name = '${replica.name}' AND state = 'streaming'`,
          );
          replicating =
            lsn !== '' &&
            this.sql(replica.pgPort, `SELECT pg_last_wal_replay_lsn() >= '${lsn}'::pg_lsn`) === 't';
        }
      } catch {
        routed = false;
      }
      if (routed && replicating) return;
      if (Date.now() > deadline)
        throw new Error(
          `the Patroni cluster did not recover within ${timeoutMs / 1000} s (roles ${roles.join(', ')}; ` +
            `routed ${routed}, replica streaming and caught up ${replicating})`,
        );
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  /** The directory of the logs (Patroni's, PostgreSQL's, HAProxy's): kept by `close(true)`. */
  get logs(): string {
    return this.work;
  }

  /** Stops everything; removes the directory unless `keepLogs` (a row came back empty: why is in there). */
  async close(keepLogs = false): Promise<void> {
    for (const n of this.nodes) signalTree(nodePids(n), 'SIGKILL');
    this.haproxy?.kill('SIGKILL');
    await new Promise((r) => setTimeout(r, 300));
    await this.etcd.stop();
    if (keepLogs) {
      for (const n of this.nodes) rmSync(n.dir, { recursive: true, force: true });
    } else rmSync(this.work, { recursive: true, force: true });
  }
}

function mkdirLog(dir: string): void {
  spawnSync('mkdir', ['-p', dir]);
  if (process.getuid?.() === 0) spawnSync('chown', ['postgres:postgres', dir]);
}

interface RunResult {
  recoveryMs: number;
  lost: number;
  splitBrain: number;
  /** Which node acknowledged the first insert after the fault. */
  firstBy: string;
}

/** One fault on the current primary of `cluster`, under the insert client; then the cluster is made whole again. */
async function oneRun(
  cluster: PatroniCluster,
  bin: string,
  fault: 'sigkill' | 'sigstop',
  stopMs: number,
): Promise<RunResult> {
  await cluster.healthy(180_000);
  const old = await cluster.leader();
  const client = new InsertClient(bin, cluster.haproxyPort);
  try {
    const warm = Date.now() + 60_000;
    while (client.acks.length < 50) {
      if (Date.now() > warm) throw new Error('the client got no acknowledged insert before the fault');
      await new Promise((r) => setTimeout(r, 50));
    }
    const pids = nodePids(old);
    if (pids.length < 2) throw new Error(`${old.name}: its Patroni agent or its PostgreSQL is not running`);
    const faultAt = Date.now();
    signalTree(pids, fault === 'sigkill' ? 'SIGKILL' : 'SIGSTOP');
    let resumed = false;
    let resumedAt = Infinity;
    const resume = setTimeout(() => {
      if (fault !== 'sigstop') return;
      signalTree(pids, 'SIGCONT');
      resumed = true;
      resumedAt = Date.now();
    }, stopMs);
    // An answer the old primary sent before the fault may be read just after it: only an insert
    // acknowledged by another node, or by the old one once resumed, counts as the first write.
    const recovered = (a: Ack): boolean => a.at > faultAt && (a.port !== old.pgPort || a.at > resumedAt);
    const deadline = faultAt + 180_000;
    while (!client.acks.some(recovered)) {
      if (Date.now() > deadline) {
        const roles = await Promise.all(
          cluster.nodes.map(async (n) => `${n.name} ${(await cluster.role(n)) ?? 'silent'}`),
        );
        let table = '';
        try {
          if (cluster.sql(cluster.haproxyPort, "SELECT to_regclass('ids') IS NULL") === 't')
            table = `; the primary HAProxy routes to has no table ids: it never replicated from ${old.name}`;
        } catch {
          // not routed
        }
        throw new Error(
          `no insert was acknowledged within 180 s of the ${fault} of ${old.name} (now: ${roles.join(', ')}${table})`,
        );
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    const first = client.acks.find(recovered) as Ack;
    // Keep writing across the resumption of a stopped primary: that is where a split brain would show.
    if (fault === 'sigstop') {
      while (!resumed) await new Promise((r) => setTimeout(r, 100));
      await new Promise((r) => setTimeout(r, 5000));
    } else {
      await new Promise((r) => setTimeout(r, 1000));
    }
    clearTimeout(resume);
    if (!resumed && fault === 'sigstop') signalTree(pids, 'SIGCONT');
    await client.stop();
    // Read back through HAProxy once it routes again.
    let present = new Set<number>();
    const readDeadline = Date.now() + 120_000;
    for (;;) {
      try {
        present = new Set(
          cluster.sql(cluster.haproxyPort, 'SELECT id FROM ids').split('\n').filter(Boolean).map(Number),
        );
        break;
      } catch (err) {
        if (Date.now() > readDeadline) throw err;
        await new Promise((r) => setTimeout(r, 250));
      }
    }
    const lost = client.acks.filter((a) => !present.has(a.id)).length;
    // Acknowledged after the fault by the old primary and gone afterwards: it had been deposed (the
    // other node was primary) and still acknowledged writes: two primaries.
    const splitBrain = client.acks.filter(
      (a) => a.at > faultAt && a.port === old.pgPort && !present.has(a.id),
    ).length;
    const firstBy = first.port === old.pgPort ? 'old primary' : 'new primary';
    // Make the cluster whole again: a killed node is restarted and rejoins (pg_rewind).
    if (fault === 'sigkill') {
      await new Promise((r) => setTimeout(r, 500));
      cluster.startNode(old);
    }
    // Through HAProxy, which may still send to a deposed primary (read-only now) until its checks see
    // the change (inter 3 s, fall 2): retried until the primary takes it.
    for (let tries = 0; ; tries++) {
      try {
        cluster.sql(cluster.haproxyPort, 'TRUNCATE ids');
        break;
      } catch (err) {
        if (tries >= 30 || !/read-only transaction/.test((err as Error).message)) throw err;
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
    return { recoveryMs: first.at - faultAt, lost, splitBrain, firstBy };
  } finally {
    await client.stop();
  }
}

/**
 * Runs the Patroni rows of the peers bench: for each configuration a fresh cluster (etcd, two Patroni
 * nodes, HAProxy), `runs` SIGKILLs and `runs` SIGSTOPs of the primary. A configuration that cannot
 * run (a tool missing, a failure) gives rows with `skipped` saying why; never throws.
 */
export async function runPostgresPeers(options: PostgresPeersOptions = {}): Promise<PeerRow[]> {
  const runs = options.runs ?? 10;
  const stopMs = options.stopMs ?? 20_000;
  const settings = (options.settings ?? PATRONI_SETTINGS).filter(
    (s) => !options.systems || options.systems.some((x) => s.system.includes(x)),
  );
  const faults = options.faults ?? (['sigkill', 'sigstop'] as const);
  const log = options.log ?? ((line: string) => process.stderr.write(line + '\n'));
  const bin = postgresBin();
  const missing = [
    ...(bin ? [] : ['postgresql']),
    ...['patroni', 'haproxy', 'etcd'].filter((c) => !which(c)),
  ];
  const empty = (system: string, fault: 'sigkill' | 'sigstop', skipped: string): PeerRow => ({
    system,
    service: 'postgres',
    fault,
    runs: 0,
    p50Ms: NaN,
    p99Ms: NaN,
    lostAcked: 0,
    splitBrain: 0,
    skipped,
  });
  if (missing.length > 0 || bin === undefined)
    return settings.flatMap((s) =>
      faults.map((f) => empty(s.system, f, `not installed: ${missing.join(', ')}`)),
    );
  const rows: PeerRow[] = [];
  for (const s of settings) {
    let cluster: PatroniCluster | undefined;
    let failed = false;
    try {
      log(`peers-postgres: starting ${s.system}`);
      cluster = await PatroniCluster.start(bin, s);
      for (const fault of faults) {
        const results: RunResult[] = [];
        try {
          for (let i = 0; i < runs; i++) {
            const r = await oneRun(cluster, bin, fault, stopMs);
            log(`peers-postgres: ${s.system} ${fault} run ${i + 1}: ${JSON.stringify(r)}`);
            results.push(r);
          }
          const times = results.map((r) => r.recoveryMs);
          rows.push({
            system: s.system,
            service: 'postgres',
            fault,
            runs: results.length,
            p50Ms: percentile(times, 50),
            p99Ms: percentile(times, 99),
            lostAcked: results.reduce((t, r) => t + r.lost, 0),
            splitBrain: results.reduce((t, r) => t + r.splitBrain, 0),
          });
        } catch (err) {
          failed = true;
          const why = `failed after ${results.length} runs: ${(err as Error).message} (logs: ${cluster.logs})`;
          log(`peers-postgres: ${s.system} ${fault}: ${why}`);
          rows.push(empty(s.system, fault, why));
        }
      }
    } catch (err) {
      for (const f of faults)
        rows.push(empty(s.system, f, `cluster did not start: ${(err as Error).message}`));
    } finally {
      // An empty row keeps Patroni's, PostgreSQL's and HAProxy's logs (the data directories go).
      await cluster?.close(failed);
    }
  }
  return rows;
}

// `node --import tsx bench/lib/peers-postgres.ts [--quick]`: the Patroni rows alone (--quick: 2 runs).
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const quick = process.argv.includes('--quick');
  const rows = await runPostgresPeers({ runs: quick ? 2 : 10 });
  process.stdout.write(JSON.stringify({ bench: 'peers-postgres', results: rows }) + '\n');
}
