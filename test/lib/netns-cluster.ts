// A small Understudy cluster on real hosts (network namespaces, test/lib/netns.ts), started by the
// start-up it shares with the hosts demo (src/cli/netns-cluster.ts):
// - a 3-member etcd cluster, one member in each of three namespaces of their own, `s1`, `s2`, `s3`
//   (dedicated "store hosts": cutting one cuts exactly one member and whatever control replica runs
//   beside it, never an agent or an instance, so a test names precisely what is on each side);
// - a control replica in `s1` and in `s2` (`c-s1`, `c-s2`): one leads and runs the kv service's router
//   on its namespace's address, the other stands by; both name all three etcd members in `--store`;
// - an `understudy agent` in each host namespace (zones as given), naming all three etcd members;
// - the kv example in hot mode (write-through) with one echo, and a kv client in a namespace of its
//   own, `client`, that is never cut: it sends to the router of whichever `s` namespace answers
//   (test/lib/netns-kv-client.ts), driven over IPC.
// For the chaos tests (test/e2e/host-loss.test.ts, test/e2e/hosts-chaos.test.ts) and `bench/hosts.ts`.
import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureClusterKey } from '../../src/agent/index.js';
import {
  netnsCliBin,
  startNetnsAgent,
  startNetnsControl,
  startNetnsEtcd,
  writeNetnsKvSpec,
  type NetnsEtcd,
  type NetnsProc,
} from '../../src/cli/netns-cluster.js';
import { NetnsLab } from './netns.js';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = join(here, '..', '..');
const ROUTER_PORT = 18080;

/** An instance record as the tests read it. */
export interface ClusterRecord {
  id: string;
  role: string;
  phase: string;
  host: string;
  epoch: number;
  stateDir: string;
  pid?: number;
}

/** A decision as the tests read it. */
export interface ClusterDecision {
  seq: number;
  at: number;
  kind: string;
  instance?: string;
  what: string;
  why: string;
  inputs: Record<string, unknown>;
  outcome: { status: string; detail?: string };
}

/** Options of {@link NetnsCluster.start}. */
export interface NetnsClusterOptions {
  /** Host → zone, one agent each. */
  hosts: Record<string, string>;
  /** The namespaces that run one etcd member each. @default ['s1', 's2', 's3'] */
  etcd?: string[];
  /** The namespaces that run one control replica each (named `c-<namespace>`). @default ['s1', 's2'] */
  controls?: string[];
  /** TTL of the agents' host leases, ms. @default 2000 */
  hostLeaseMs?: number;
  /** TTL of the control leader's lease, ms (whole seconds on etcd). @default the CLI's (3 s) */
  leaderTtlMs?: number;
  /** How long a lost host's instances wait before moving (`--replace-lost-after`), ms. @default 20000 */
  replaceLostAfterMs?: number;
  // --- Added for the seeds' host-level features (test/e2e/hosts-seeds.test.ts) ---
  /**
   * More settings of the kv service, YAML lines as they would stand under it (e.g.
   * `shadow: { count: 2 }`, `migration: { auto: true }`), appended to the spec. @default none
   */
  kvSpec?: readonly string[];
  /**
   * The kv service's `echo:` setting, YAML flow (test/e2e/hosts-file-sync.test.ts: a warm echo kept
   * by file sync). @default `{ count: 1, mode: hot, consistency: write-through }`
   */
  kvEcho?: string;
}

/** What the client saw of a load run. */
export interface LoadRun {
  /** Acknowledged writes: key → value. */
  acked: [string, string][];
  /** Who acknowledged each acknowledged write: key, instance, epoch (the kv example's answer headers). */
  acks: [string, string, number][];
  writes: number;
  errors: number;
  errorSamples: string[];
  /**
   * With {@link NetnsCluster.stopLoad}`(true)`: every request as the client saw it — sent, done (ms since
   * the epoch), status (0: no answer), write (1) or read (0), error.
   */
  trace?: [number, number, number, number, string][];
}

/** What {@link NetnsCluster.firstOkTrace} saw. */
export interface FirstOk {
  /** When the first write was acknowledged (ms since the epoch); null: none in time. */
  at: number | null;
  /** When that write was sent. */
  sentAt: number | null;
  /** Every write sent before `at`: sent, done, status (0: no answer), error. */
  trace: [number, number, number, string][];
}

/** Resolves after `ms`. */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Waits until `fn` answers true (an answer that throws counts as false), asking every `everyMs`.
 * Thrown after `ms`: an Error naming `what()`.
 */
export async function waitFor(
  what: () => string,
  fn: () => boolean | Promise<boolean>,
  ms: number,
  everyMs = 100,
): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (
      await Promise.resolve()
        .then(fn)
        .catch(() => false)
    )
      return;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what()}`);
    await sleep(everyMs);
  }
}

const until = (what: () => string, fn: () => boolean | Promise<boolean>, ms: number): Promise<void> =>
  waitFor(what, fn, ms, 50);

/**
 * A test file's `afterAll`: with `US_DEBUG_E2E` set, writes what every control replica and agent of
 * the cluster printed to stderr; then closes the cluster (nothing when it never started).
 */
export async function closeCluster(cluster: NetnsCluster | undefined): Promise<void> {
  if (!cluster) return;
  if (process.env.US_DEBUG_E2E) {
    for (const [ns, c] of cluster.controls) process.stderr.write(`--- control ${ns}\n${c.out()}\n`);
    for (const [h, a] of cluster.agents) process.stderr.write(`--- ${h}\n${a.out()}\n`);
  }
  await cluster.close();
}

/** A running cluster; always {@link close} it. */
export class NetnsCluster {
  readonly agents = new Map<string, NetnsProc>();
  /** Control replicas by namespace. */
  readonly controls = new Map<string, NetnsProc>();
  etcd!: NetnsEtcd;
  /** Every pid this cluster started or saw recorded (agents, replicas, etcd members, instances). */
  readonly pids = new Set<number>();
  #client!: ChildProcess;
  #nextId = 0;
  #leaderNs: string | undefined;
  readonly #pending = new Map<number, (m: Record<string, unknown>) => void>();

  private constructor(
    readonly lab: NetnsLab,
    readonly dir: string,
    readonly tag: string,
    readonly options: NetnsClusterOptions,
  ) {}

  /** Creates the lab and starts etcd, the agents, the control replicas and the client; waits for a primary and an echo. */
  static async start(options: NetnsClusterOptions): Promise<NetnsCluster> {
    const etcd = options.etcd ?? ['s1', 's2', 's3'];
    const controls = options.controls ?? ['s1', 's2'];
    const names = [...new Set([...etcd, ...controls, 'client', ...Object.keys(options.hosts)])];
    const lab = NetnsLab.create({ hosts: names });
    const c = new NetnsCluster(lab, mkdtempSync(join(tmpdir(), 'us-netns-cluster-')), randomUUID(), {
      ...options,
      etcd,
      controls,
    });
    try {
      await c.#start();
    } catch (e) {
      await c.close();
      throw e;
    }
    return c;
  }

  /** The `--store` connection string: every etcd member. */
  get storeUrl(): string {
    return this.etcd.url;
  }

  /** The control replica that leads now (the first one before any is known to). */
  get control(): NetnsProc {
    const ns = this.#leaderNs ?? this.options.controls![0]!;
    return this.controls.get(ns)!;
  }

  get #env(): NodeJS.ProcessEnv {
    return { ...process.env, US_TEST_TAG: this.tag };
  }

  async #start(): Promise<void> {
    const { lab, dir } = this;
    this.etcd = await startNetnsEtcd(lab, { members: this.options.etcd!, dataDir: dir });
    for (const p of this.etcd.processes.values()) if (p.pid) this.pids.add(p.pid);
    ensureClusterKey(join(dir, 'cluster.key'));
    for (const host of Object.keys(this.options.hosts)) await this.startAgent(host);
    const spec = join(dir, 'kv.yaml');
    writeNetnsKvSpec(spec, ROUTER_PORT, this.options.kvSpec, this.options.kvEcho);
    for (const ns of this.options.controls!) {
      const proc = startNetnsControl(lab, ns, {
        spec,
        store: this.storeUrl,
        name: `c-${ns}`,
        clusterKey: join(dir, 'cluster.key'),
        dataDir: join(dir, `control-${ns}`),
        replaceLostAfterMs: this.options.replaceLostAfterMs ?? 20_000,
        ...(this.options.leaderTtlMs !== undefined ? { leaderTtlMs: this.options.leaderTtlMs } : {}),
        env: this.#env,
      });
      this.controls.set(ns, proc);
      if (proc.child.pid) this.pids.add(proc.child.pid);
    }
    const routers = this.options.controls!.map((ns) => `http://${lab.address(ns)}:${ROUTER_PORT}`);
    this.#client = lab.exec(
      'client',
      process.execPath,
      [
        '--import',
        'tsx',
        join(here, 'netns-kv-client.ts'),
        routers.join(','),
        [...this.etcd.endpoints.values()].join(','),
        '',
      ],
      { cwd: repoRoot, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] },
    );
    await new Promise<void>((resolve, reject) => {
      this.#client.on('message', (m: Record<string, unknown>) => {
        if (m.type === 'ready') resolve();
        const done = typeof m.id === 'number' ? this.#pending.get(m.id) : undefined;
        if (done) {
          this.#pending.delete(m.id as number);
          done(m);
        }
      });
      this.#client.once('exit', (code) => reject(new Error(`the kv client exited (${code})`)));
    });
    await this.pair(60_000);
    await until(
      () => `the router to serve: ${this.control.out()}`,
      async () => (await this.probe()) === 200,
      20_000,
    );
  }

  /** Starts (or starts again, after a host loss: link healed) the agent of `host`; waits until it serves. */
  async startAgent(host: string): Promise<void> {
    this.lab.heal(host);
    const { proc, serving } = await startNetnsAgent(this.lab, {
      store: this.storeUrl,
      host,
      zone: this.options.hosts[host] ?? '',
      clusterKey: join(this.dir, 'cluster.key'),
      leaseTtlMs: this.options.hostLeaseMs ?? 2000,
      leaveRunning: true,
      env: this.#env,
    });
    this.agents.set(host, proc);
    if (proc.child.pid) this.pids.add(proc.child.pid);
    if (!serving) throw new Error(`agent ${host} did not start: ${proc.out()}`);
  }

  /**
   * Restarts the agent of `host` as an operator would for an upgrade: SIGTERM to an agent started with
   * `--leave-running` (its instances keep running), then a new agent, which adopts them.
   */
  async restartAgent(host: string): Promise<void> {
    const old = this.agents.get(host);
    if (old && old.child.exitCode === null && old.child.signalCode === null) {
      const exited = new Promise<void>((r) => old.child.once('exit', () => r()));
      old.child.kill('SIGTERM');
      await exited;
    }
    await this.startAgent(host);
  }

  /** The leading replica (name and namespace), as `control/leader` in etcd says; undefined while none leads. */
  async leader(): Promise<{ name: string; ns: string } | undefined> {
    const r = (await this.call('list', { prefix: 'control/leader' })) as {
      records: { key: string; value: string }[];
    };
    const rec = r.records.find((x) => x.key === 'control/leader');
    if (!rec) return undefined;
    const name = (JSON.parse(rec.value) as { id?: string }).id ?? '';
    const ns = name.replace(/^c-/, '');
    if (this.controls.has(ns)) this.#leaderNs = ns;
    return { name, ns };
  }

  /**
   * `understudy verify kv` run by the user inside the leader's namespace against its data directory:
   * its exit status and output.
   */
  async verify(): Promise<{ status: number | null; out: string }> {
    const leader = await this.leader();
    if (!leader) return { status: null, out: 'no control replica leads' };
    const r = this.lab.run(leader.ns, process.execPath, [
      netnsCliBin,
      'verify',
      'kv',
      '-d',
      join(this.dir, `control-${leader.ns}`),
    ]);
    return { status: r.status, out: r.stdout + r.stderr };
  }

  /**
   * The epochs under which more than one instance acknowledged a write (split brain), from the
   * client's view of who acknowledged what: epoch → instances. Empty when every epoch had one writer.
   */
  static sharedEpochs(acks: [string, string, number][]): Record<number, string[]> {
    const by = new Map<number, Set<string>>();
    for (const [, instance, epoch] of acks) {
      const set = by.get(epoch) ?? new Set<string>();
      set.add(instance);
      by.set(epoch, set);
    }
    return Object.fromEntries([...by].filter(([, s]) => s.size > 1).map(([e, s]) => [e, [...s].sort()]));
  }

  /** The running primary and echo, once both run (a re-elected control may be rebuilding the echo). */
  async pair(timeoutMs = 40_000): Promise<{ primary: ClusterRecord; echo: ClusterRecord }> {
    let out: { primary: ClusterRecord; echo: ClusterRecord } | undefined;
    await until(
      () => `a running primary and echo: ${this.control.out().slice(-2000)}`,
      async () => {
        const recs = await this.records();
        const primary = recs.find((r) => r.role === 'primary' && r.phase === 'running');
        const echo = recs.find((r) => r.role === 'echo' && r.phase === 'running');
        if (primary && echo) out = { primary, echo };
        return out !== undefined;
      },
      timeoutMs,
    );
    return out!;
  }

  /**
   * Waits until the echo `id` applies every mutation: started (or restarted) at least 3 s ago — a fresh
   * echo replaying the log falls behind for a moment first — and its last sync change, if any, says in
   * sync.
   */
  async inSync(id: string, timeoutMs = 30_000): Promise<void> {
    await until(
      () => `echo ${id} to be in sync: ${this.control.out().slice(-2000)}`,
      async () => {
        const mine = (await this.decisions()).filter((x) => x.instance === id);
        const started = mine.filter((x) => ['start', 'restart', 'replay'].includes(x.kind)).pop();
        if (started && Date.now() - started.at < 3000) return false;
        const last = mine.filter((x) => x.kind === 'echo-in-sync' || x.kind === 'echo-lagging').pop();
        return last === undefined || last.kind === 'echo-in-sync';
      },
      timeoutMs,
    );
  }

  /**
   * Acknowledged writes that instance `old` holds but its successor `next` does not — acknowledged by
   * the old primary alone (split brain, or lost): read from their kv logs.
   */
  static ackedAlone(acked: [string, string][], old: ClusterRecord, next: ClusterRecord): string[] {
    const a = NetnsCluster.kvLog(old.stateDir);
    const b = NetnsCluster.kvLog(next.stateDir);
    return acked.filter(([k, v]) => a.get(k)?.value === v && b.get(k)?.value !== v).map(([k]) => k);
  }

  /** One request to the kv client; its answer. */
  call(
    type: string,
    body: Record<string, unknown> = {},
    timeoutMs = 60_000,
  ): Promise<Record<string, unknown>> {
    const id = ++this.#nextId;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`kv client: no answer to ${type}`)), timeoutMs);
      this.#pending.set(id, (m) => {
        clearTimeout(timer);
        if (typeof m.error === 'string') reject(new Error(`kv client: ${m.error}`));
        else resolve(m);
      });
      this.#client.send({ id, type, ...body });
    });
  }

  async records(): Promise<ClusterRecord[]> {
    const r = (await this.call('list', { prefix: 'instances/' })) as { records: { value: string }[] };
    const recs = r.records.map((x) => JSON.parse(x.value) as ClusterRecord);
    for (const rec of recs) if (rec.pid) this.pids.add(rec.pid);
    return recs;
  }

  async decisions(): Promise<ClusterDecision[]> {
    const r = (await this.call('list', { prefix: 'events/' })) as { records: { value: string }[] };
    return r.records.map((x) => JSON.parse(x.value) as ClusterDecision).sort((a, b) => a.seq - b.seq);
  }

  async primary(): Promise<ClusterRecord | undefined> {
    return (await this.records()).find((r) => r.role === 'primary' && r.phase === 'running');
  }

  /** One PUT through the router: its status (0: no answer). */
  async probe(timeoutMs = 1000): Promise<number> {
    return Number((await this.call('probe', { timeoutMs })).status);
  }

  /** When (ms since the epoch) the first of writes sent every 25 ms from now was acknowledged; null: none in `timeoutMs`. */
  async firstOk(timeoutMs = 30_000): Promise<number | null> {
    const r = await this.call('first-ok', { timeoutMs }, timeoutMs + 10_000);
    return typeof r.at === 'number' ? r.at : null;
  }

  /** As {@link firstOk}, with when the acknowledged write was sent and what came of the writes before it. */
  async firstOkTrace(timeoutMs = 30_000): Promise<FirstOk> {
    return (await this.call('first-ok', { timeoutMs }, timeoutMs + 10_000)) as unknown as FirstOk;
  }

  async startLoad(rate: number, prefix: string): Promise<void> {
    await this.call('load', { rate, writeShare: 0.5, prefix });
  }

  /** Stops the load; with `trace`, its answer has every request's times ({@link LoadRun.trace}). */
  async stopLoad(trace = false): Promise<LoadRun> {
    return (await this.call('stop-load', trace ? { trace: true } : {})) as unknown as LoadRun;
  }

  async missing(acked: [string, string][]): Promise<string[]> {
    return ((await this.call('missing', { acked }, 120_000)) as { missing: string[] }).missing;
  }

  /** The puts in an instance's kv log (key → value), read from its state directory. */
  static kvLog(stateDir: string): Map<string, { value: string; epoch: number }> {
    const out = new Map<string, { value: string; epoch: number }>();
    let text = '';
    try {
      text = readFileSync(join(stateDir, 'kv.log'), 'utf8');
    } catch {
      return out;
    }
    for (const line of text.split('\n')) {
      if (line.length < 10) continue;
      try {
        const rec = JSON.parse(line.slice(9)) as { op: string; key?: string; value?: string; epoch?: number };
        if (rec.op === 'put' && rec.key) out.set(rec.key, { value: rec.value ?? '', epoch: rec.epoch ?? 0 });
      } catch {
        // a torn last line
      }
    }
    return out;
  }

  /** Kills every process of the host's namespace and cuts its link (a host lost). */
  loseHost(host: string): void {
    this.lab.partition(host);
    this.lab.killAll(host);
  }

  /** Every process of this cluster still alive (pids it started or saw recorded): none after {@link close}. */
  alive(): number[] {
    return [...this.pids].filter((pid) => {
      try {
        // A zombie (exited, not yet reaped by whoever inherited it) runs nothing.
        return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
      } catch {
        return false;
      }
    });
  }

  async close(): Promise<void> {
    if (this.#client?.connected) this.#client.send({ id: 0, type: 'exit' });
    await this.lab.close();
    // US_KEEP_NETNS_DIR=1 keeps the data (instance logs, etcd) for a post-mortem.
    if (process.env.US_KEEP_NETNS_DIR) process.stderr.write(`netns cluster data kept in ${this.dir}\n`);
    else rmSync(this.dir, { recursive: true, force: true });
  }
}
