// A small Understudy cluster on real hosts (network namespaces, test/lib/netns.ts): etcd and one
// control replica in a `store` namespace, an `understudy agent` in each host namespace (zones as
// given), the kv example in hot mode (write-through) with one echo, and a kv client inside the store
// namespace driven over IPC. For the chaos tests (test/e2e/host-loss.test.ts) and `bench/hosts.ts`.
import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureClusterKey } from '../../src/agent/index.js';
import { NetnsLab } from './netns.js';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = join(here, '..', '..');
const cliBin = join(repoRoot, 'bin', 'understudy.js');
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
  /** TTL of the agents' host leases, ms. @default 2000 */
  hostLeaseMs?: number;
  /** How long a lost host's instances wait before moving (`--replace-lost-after`), ms. @default 20000 */
  replaceLostAfterMs?: number;
  // --- Added for the seeds' host-level features (test/e2e/hosts-seeds.test.ts) ---
  /**
   * More settings of the kv service, YAML lines as they would stand under it (e.g.
   * `shadow: { count: 2 }`, `migration: { auto: true }`), appended to the spec. @default none
   */
  kvSpec?: readonly string[];
}

interface Proc {
  child: ChildProcess;
  out: () => string;
}

async function until(what: () => string, fn: () => boolean | Promise<boolean>, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await fn()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A running cluster; always {@link close} it. */
export class NetnsCluster {
  readonly agents = new Map<string, Proc>();
  control!: Proc;
  #client!: ChildProcess;
  #nextId = 0;
  readonly #pending = new Map<number, (m: Record<string, unknown>) => void>();

  private constructor(
    readonly lab: NetnsLab,
    readonly dir: string,
    readonly tag: string,
    readonly options: NetnsClusterOptions,
  ) {}

  /** Creates the lab and starts etcd, the agents, the control replica and the client; waits for a primary and an echo. */
  static async start(options: NetnsClusterOptions): Promise<NetnsCluster> {
    const lab = NetnsLab.create({ hosts: ['store', ...Object.keys(options.hosts)] });
    const c = new NetnsCluster(lab, mkdtempSync(join(tmpdir(), 'us-netns-cluster-')), randomUUID(), options);
    try {
      await c.#start();
    } catch (e) {
      await c.close();
      throw e;
    }
    return c;
  }

  get storeUrl(): string {
    return `etcd://${this.lab.address('store')}:2379`;
  }

  #exec(host: string, args: string[]): Proc {
    const child = this.lab.exec(host, process.execPath, args, {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, US_TEST_TAG: this.tag },
    });
    let out = '';
    child.stdout?.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr?.on('data', (b: Buffer) => (out += b.toString()));
    return { child, out: () => out };
  }

  async #start(): Promise<void> {
    const { lab, dir } = this;
    const client = `http://${lab.address('store')}:2379`;
    lab.exec(
      'store',
      process.env.UNDERSTUDY_ETCD_BIN ?? '/usr/bin/etcd',
      [
        '--name=s',
        `--data-dir=${join(dir, 'etcd')}`,
        `--listen-client-urls=${client}`,
        `--advertise-client-urls=${client}`,
        '--listen-peer-urls=http://127.0.0.1:2380',
        '--initial-advertise-peer-urls=http://127.0.0.1:2380',
        '--initial-cluster=s=http://127.0.0.1:2380',
        '--heartbeat-interval=50',
        '--election-timeout=500',
        '--log-level=error',
        '--logger=zap',
      ],
      { stdio: 'ignore' },
    );
    await until(
      () => 'etcd in the store namespace',
      () => lab.run('store', 'etcdctl', [`--endpoints=${client}`, 'endpoint', 'health']).status === 0,
      20_000,
    );
    const key = join(dir, 'cluster.key');
    ensureClusterKey(key);
    for (const host of Object.keys(this.options.hosts)) await this.startAgent(host);
    const spec = join(dir, 'kv.yaml');
    writeFileSync(
      spec,
      `services:
  - name: kv
    command: [node, server.mjs, --port, '{port}', --state, '{stateDir}', --host, '0.0.0.0']
    cwd: ${join(repoRoot, 'examples/kv')}
    ports: { http: 0 }
    routing: { listen: '0.0.0.0:${ROUTER_PORT}' }
    health: { http: { path: /healthz }, interval: 200ms, timeout: 300ms, failureThreshold: 2 }
    echo: { count: 1, mode: hot, consistency: write-through }
    restart: { backoff: 50ms, maxRestarts: 50 }
${(this.options.kvSpec ?? []).map((line) => `    ${line}\n`).join('')}`,
    );
    this.control = this.#exec('store', [
      cliBin,
      'control',
      spec,
      '--store',
      this.storeUrl,
      '--name',
      'c1',
      '--api',
      '127.0.0.1:0',
      '--cluster-key',
      key,
      '--replace-lost-after',
      `${this.options.replaceLostAfterMs ?? 20_000}ms`,
      '-d',
      join(dir, 'control'),
    ]);
    this.#client = lab.exec(
      'store',
      process.execPath,
      [
        '--import',
        'tsx',
        join(here, 'netns-kv-client.ts'),
        `http://127.0.0.1:${ROUTER_PORT}`,
        `${lab.address('store')}:2379`,
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
    await until(
      () => `a running primary and echo: ${this.control.out()}`,
      async () => {
        const recs = await this.records();
        return (
          recs.some((r) => r.role === 'primary' && r.phase === 'running') &&
          recs.some((r) => r.role === 'echo' && r.phase === 'running')
        );
      },
      60_000,
    );
    await until(
      () => `the router to serve: ${this.control.out()}`,
      async () => (await this.probe()) === 200,
      20_000,
    );
  }

  /** Starts (or starts again, after a host loss: link healed) the agent of `host`; waits until it serves. */
  async startAgent(host: string): Promise<void> {
    this.lab.heal(host);
    const zone = this.options.hosts[host] ?? '';
    const a = this.#exec(host, [
      cliBin,
      'agent',
      '--store',
      this.storeUrl,
      '--host',
      host,
      '--zone',
      zone,
      '--listen',
      `${this.lab.address(host)}:0`,
      '--cluster-key',
      join(this.dir, 'cluster.key'),
      '--lease-ttl',
      `${this.options.hostLeaseMs ?? 2000}ms`,
    ]);
    this.agents.set(host, a);
    await until(
      () => `agent ${host}: ${a.out()}`,
      () => /serving http/.test(a.out()),
      20_000,
    );
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
    return r.records.map((x) => JSON.parse(x.value) as ClusterRecord);
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

  async startLoad(rate: number, prefix: string): Promise<void> {
    await this.call('load', { rate, writeShare: 0.5, prefix });
  }

  async stopLoad(): Promise<{ acked: [string, string][]; writes: number; errors: number }> {
    return (await this.call('stop-load')) as { acked: [string, string][]; writes: number; errors: number };
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

  async close(): Promise<void> {
    if (this.#client?.connected) this.#client.send({ id: 0, type: 'exit' });
    await this.lab.close();
    // US_KEEP_NETNS_DIR=1 keeps the data (instance logs, etcd) for a post-mortem.
    if (process.env.US_KEEP_NETNS_DIR) process.stderr.write(`netns cluster data kept in ${this.dir}\n`);
    else rmSync(this.dir, { recursive: true, force: true });
  }
}
