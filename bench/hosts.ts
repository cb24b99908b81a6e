// `npm run bench -- hosts [--quick]`: Understudy across real hosts (network namespaces on a bridge,
// test/lib/netns.ts). The sync row: initial copy and continuous sync from host A to host B over the
// veth, against rsync over the same veth (an rsync daemon inside host B on its bridge address, the
// client inside host A, --no-whole-file, bytes from --stats). The host-loss and partition rows: a
// cluster of three hosts in two zones (test/lib/netns-cluster.ts: a 3-member etcd in namespaces
// s1-s3, control replicas in s1 and s2, the kv example in hot write-through mode), the primary's host
// lost (every process killed, link down) under unique writes, ≥ 10 times (2 with --quick): host loss
// → first successful write, each run also taken apart step by step on the machine's one clock
// (`hostLossBreakdown`: suspicion, the self-fence wait, promotion, the client); then the primary's
// host partitioned: cut → the old primary fenced by its own agent (and how late after its bound).
// `--loss-only` skips the sync rows; `--loss-runs N` sets the host-loss runs.
// Needs root (network namespaces), etcd, the built CLI (dist/) and the rsync command.
import { spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { closeSync, mkdirSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { SyncStats } from '../src/sync/index.js';
import { verifyTrees } from '../src/sync/index.js';
import { netnsSupport, NetnsLab } from '../test/lib/netns.js';
import { NetnsCluster, type ClusterDecision, type FirstOk, type LoadRun } from '../test/lib/netns-cluster.js';
import { rsyncStatsBytes } from './lib/sync-rsync.js';
import { runWriter } from './lib/sync-writer.js';

const quick = process.argv.includes('--quick');
/** `--loss-only`: skip the sync rows (the host-loss rows alone, e.g. to trace them). */
const lossOnly = process.argv.includes('--loss-only');
/** `--loss-runs N`: host-loss runs. @default 10, 2 with --quick */
const runsArg = process.argv.indexOf('--loss-runs');
const lossRuns = runsArg > 0 ? Number(process.argv[runsArg + 1]) : quick ? 2 : 10;
if (!Number.isInteger(lossRuns) || lossRuns < 1) {
  process.stderr.write('bench hosts: --loss-runs takes a whole number of runs >= 1\n');
  process.exit(2);
}
const MiB = 1024 * 1024;
const S = quick
  ? { initial: 32 * MiB, smallFiles: 200, contSeconds: 3 }
  : { initial: 256 * MiB, smallFiles: 2000, contSeconds: 10 };
const KEY = 'bench-hosts-sync-key-0123456789';
const RSYNC_PORT = 8730; // inside host B's namespace: nothing else listens there
const peerScript = join(dirname(fileURLToPath(import.meta.url)), '..', 'test', 'lib', 'netns-sync-peer.ts');
const log = (s: string): void => void process.stderr.write(`${s}\n`);

const support = netnsSupport();
if (!support.ok) {
  process.stderr.write(`bench hosts: network namespaces are needed (${support.reason})\n`);
  process.exit(2);
}
if (!lossOnly && spawnSync('rsync', ['--version']).status !== 0) {
  process.stderr.write('bench hosts: the rsync command is required (apt-get install -y rsync)\n');
  process.exit(2);
}

interface Applied {
  seq: number;
  at: number;
  size: number;
}

/** A sync peer (test/lib/netns-sync-peer.ts) inside a host, driven over IPC. */
class Peer {
  readonly applied: Applied[] = [];
  connectedAt = 0;
  #statsWaiters: ((s: SyncStats | null) => void)[] = [];
  private constructor(readonly child: ChildProcess) {}

  static async start(lab: NetnsLab, host: string, args: string[]): Promise<{ peer: Peer; port: number }> {
    const child = lab.exec(host, process.execPath, ['--import', 'tsx', peerScript, ...args], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const peer = new Peer(child);
    const port = await new Promise<number>((resolve, reject) => {
      child.on('message', (m: { type: string; port?: number; stats?: SyncStats | null } & Applied) => {
        if (m.type === 'ready') resolve(m.port ?? 0);
        else if (m.type === 'connected') peer.connectedAt = m.at;
        else if (m.type === 'applied') peer.applied.push({ seq: m.seq, at: m.at, size: m.size });
        else if (m.type === 'stats') peer.#statsWaiters.shift()?.(m.stats ?? null);
      });
      child.once('exit', (code) => reject(new Error(`sync peer in ${host} exited ${code}`)));
    });
    return { peer, port };
  }

  stats(): Promise<SyncStats | null> {
    return new Promise((resolve) => {
      this.#statsWaiters.push(resolve);
      this.child.send({ type: 'stats' });
    });
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.send({ type: 'stop' });
    const t = setTimeout(() => this.child.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(t);
  }
}

/** Waits until every change is applied and acknowledged (as bench/lib/sync-harness.ts settles). */
async function settle(
  source: Peer,
  sentBefore: number,
  timeoutMs = 300_000,
  quietMs = 300,
): Promise<SyncStats> {
  const until = Date.now() + timeoutMs;
  let stableSince = 0;
  for (;;) {
    const s = await source.stats();
    const caughtUp =
      s !== null &&
      s.connected &&
      s.batchesSent > sentBefore &&
      s.batchesAcked === s.batchesSent &&
      s.lagSeconds === 0 &&
      s.initialSync === null;
    if (caughtUp) {
      stableSince ||= Date.now();
      if (Date.now() - stableSince >= quietMs) return s;
    } else stableSince = 0;
    if (Date.now() > until) throw new Error(`sync did not settle: ${JSON.stringify(s)}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const wire = (s: SyncStats | null): number => (s ? s.wireBytes + s.wireBytesIn : 0);

/** The sync rows: initial copy and continuous sync from host A to host B, against rsync. */
async function syncRows(lines: string[]): Promise<Record<string, unknown>> {
  const lab = NetnsLab.create({ hosts: ['host-a', 'host-b'] });
  const A = 'host-a';
  const B = 'host-b';
  const base = await mkdtemp(join(tmpdir(), 'us-bench-hosts-'));
  const peers: Peer[] = [];

  /** One rsync run from host A to the daemon in host B; bytes = sent + received (--stats). */
  function rsync(src: string, dest: string): { bytes: number; seconds: number } {
    const t = performance.now();
    const r = lab.run(A, 'rsync', [
      '-a',
      '--delete',
      '--no-whole-file',
      '--stats',
      `${src}/`,
      `rsync://${lab.address(B)}:${RSYNC_PORT}/bench/${dest}/`,
    ]);
    const seconds = (performance.now() - t) / 1000;
    if (r.status !== 0) throw new Error(`rsync failed: ${r.stderr}`);
    return { bytes: rsyncStatsBytes(r.stdout), seconds };
  }

  /** Starts a primary in host A on `a` and an echo in host B on `b`. */
  async function pair(a: string, b: string, watchFile?: string): Promise<{ source: Peer; target: Peer }> {
    const { peer: source, port } = await Peer.start(lab, A, ['source', a, lab.address(A), KEY]);
    peers.push(source);
    const { peer: target } = await Peer.start(lab, B, [
      'target',
      b,
      lab.address(A),
      String(port),
      KEY,
      ...(watchFile ? [watchFile] : []),
    ]);
    peers.push(target);
    return { source, target };
  }

  let result: Record<string, unknown> = {};
  try {
    const rsyncRoot = join(base, 'rsync');
    mkdirSync(rsyncRoot);
    const conf = join(base, 'rsyncd.conf');
    writeFileSync(
      conf,
      `pid file = ${join(base, 'rsyncd.pid')}\nuse chroot = no\n[bench]\n  path = ${rsyncRoot}\n  read only = no\n  uid = 0\n  gid = 0\n`,
    );
    lab.exec(
      B,
      'rsync',
      ['--daemon', '--no-detach', `--port=${RSYNC_PORT}`, `--address=${lab.address(B)}`, `--config=${conf}`],
      { stdio: 'ignore' },
    );
    for (let i = 0; ; i++) {
      if (lab.run(A, 'rsync', [`rsync://${lab.address(B)}:${RSYNC_PORT}/`]).status === 0) break;
      if (i > 100) throw new Error('the rsync daemon in host B did not start');
      await new Promise((r) => setTimeout(r, 50));
    }

    // Initial copy: one big incompressible file and many small ones, to an empty echo.
    log(`initial copy (${S.initial / MiB} MiB + ${S.smallFiles} small files) A → B…`);
    const data = join(base, 'initial', 'a');
    mkdirSync(join(data, 'small'), { recursive: true });
    const fd = openSync(join(data, 'state.bin'), 'w');
    for (let off = 0; off < S.initial; off += 16 * MiB)
      writeSync(fd, randomBytes(Math.min(16 * MiB, S.initial - off)));
    closeSync(fd);
    for (let i = 0; i < S.smallFiles; i++)
      writeFileSync(join(data, 'small', `f${i}.dat`), randomBytes(1024 + randomInt(7 * 1024 + 1)));
    spawnSync('sync');
    const rs = rsync(data, 'initial');
    spawnSync('sync');
    const init = await pair(data, join(base, 'initial', 'b'));
    const initStats = await settle(init.source, 0);
    const initSeconds = ((init.target.applied.at(-1)?.at ?? 0) - init.source.connectedAt) / 1000;
    const initDiffs = await verifyTrees(data, join(base, 'initial', 'b'));
    if (initDiffs.length > 0)
      throw new Error(`initial copy: echo differs: ${JSON.stringify(initDiffs.slice(0, 3))}`);
    const initBytes = wire(initStats);
    await init.target.stop();
    await init.source.stop();

    // Continuous: 4 KiB appends at 200/s; change-to-applied latency on B; then what one rsync catch-up
    // of the same appends costs (rsync has no continuous mode: a periodic rsync pays this per period).
    log(`continuous (${S.contSeconds} s of 4 KiB appends at 200/s) A → B…`);
    const ca = join(base, 'cont', 'a');
    mkdirSync(ca, { recursive: true });
    writeFileSync(join(ca, 'wal.log'), '');
    rsync(ca, 'cont');
    const cont = await pair(ca, join(base, 'cont', 'b'), 'wal.log');
    const before = await settle(cont.source, -1);
    const writes = await runWriter(join(ca, 'wal.log'), S.contSeconds * 200, 5, 4096);
    const after = await settle(cont.source, before.batchesSent);
    const reports = cont.target.applied.filter((r) => r.size >= 0).sort((x, y) => x.seq - y.seq);
    const lat: number[] = [];
    let ri = 0;
    for (const w of writes) {
      while (ri < reports.length && (reports[ri] as Applied).size < w.end) ri++;
      const rep = reports[ri];
      if (rep) lat.push(rep.at - w.at);
    }
    lat.sort((x, y) => x - y);
    const q = (p: number): number => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] ?? NaN;
    const contDiffs = await verifyTrees(ca, join(base, 'cont', 'b'));
    if (contDiffs.length > 0)
      throw new Error(`continuous: echo differs: ${JSON.stringify(contDiffs.slice(0, 3))}`);
    const contBytes = wire(after) - wire(before);
    const rc = rsync(ca, 'cont');
    await cont.target.stop();
    await cont.source.stop();

    const fmtB = (n: number): string =>
      n >= MiB ? `${(n / MiB).toFixed(2)} MiB` : n >= 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${n} B`;
    lines.push(
      `hosts bench${quick ? ' (--quick: smaller sizes)' : ''}: sync from host A to host B over a veth (network namespaces on a bridge, ${lab.subnet})`,
      'rsync: daemon inside host B on its bridge address, client inside host A, -a --delete --no-whole-file',
      '',
      `${'workload'.padEnd(14)} ${'bytes'.padStart(12)} ${'rsync bytes'.padStart(12)} ${'ratio'.padStart(7)} ${'s'.padStart(8)} ${'rsync s'.padStart(8)}`,
      `${'initial-copy'.padEnd(14)} ${fmtB(initBytes).padStart(12)} ${fmtB(rs.bytes).padStart(12)} ${(initBytes / rs.bytes).toFixed(3).padStart(7)} ${initSeconds.toFixed(3).padStart(8)} ${rs.seconds.toFixed(3).padStart(8)}`,
      `${'continuous'.padEnd(14)} ${fmtB(contBytes).padStart(12)} ${fmtB(rc.bytes).padStart(12)} ${(contBytes / rc.bytes).toFixed(3).padStart(7)} ${'-'.padStart(8)} ${rc.seconds.toFixed(3).padStart(8)}`,
      `continuous: ${writes.length} writes, change-to-applied on host B p50 ${q(0.5).toFixed(1)} ms, p99 ${q(0.99).toFixed(1)} ms (rsync: one catch-up run of the same appends, above)`,
    );
    result = {
      bench: 'hosts',
      quick,
      syncVsRsync: {
        initialCopy: {
          bytes: initBytes,
          rsyncBytes: rs.bytes,
          ratio: initBytes / rs.bytes,
          seconds: initSeconds,
          rsyncSeconds: rs.seconds,
        },
        continuous: {
          writes: writes.length,
          p50Ms: q(0.5),
          p99Ms: q(0.99),
          bytes: contBytes,
          rsyncCatchUpBytes: rc.bytes,
          rsyncCatchUpSeconds: rc.seconds,
        },
      },
    };
  } finally {
    for (const p of peers) await p.stop().catch(() => undefined);
    await lab.close();
    await rm(base, { recursive: true, force: true });
  }
  return result;
}

let result: Record<string, unknown> = {};
const lines: string[] = [];
if (!lossOnly) result = await syncRows(lines);

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * One host loss, step by step, every time on this machine's one clock (every namespace shares it), ms
 * after the kill (`t0`): the lost host's last answered heartbeat (from the suspicion's `silentMs`), the
 * suspicion (the `host-lost` decision), the end of the wait for its self-fence deadline (the pending
 * decision's settlement), the failover decision, the new primary serving (the failover's promotionMs:
 * the router switched), and the client: when the first acknowledged write was sent and acknowledged;
 * how many requests were open at the switch; the first load request acknowledged after the switch; and
 * the longest gap between two of the client's sends (a stall of its own loop).
 */
interface Breakdown {
  lastAnswer: number;
  suspected: number;
  holdMs: number;
  holdEnd: number;
  failoverAt: number;
  promotionMs: number;
  served: number;
  firstOkSent: number;
  firstOk: number;
  openAtSwitch: number;
  firstLoadAck: number;
  failedWrites: number;
  clientGapMs: number;
}

function breakdown(
  t0: number,
  old: { id: string; host: string },
  first: FirstOk,
  load: LoadRun,
  decisions: ClusterDecision[],
): Breakdown {
  const mine = decisions.filter((d) => d.at >= t0 - 50 && d.inputs.host === old.host);
  const suspect = mine.find(
    (d) => d.kind === 'host-lost' && d.what.startsWith(`host ${old.host} is suspected`),
  );
  const hold = mine.find((d) => d.kind === 'host-lost' && d.what.startsWith('failover of'));
  const failover = decisions.find(
    (d) => d.kind === 'failover' && d.at >= t0 && d.what.includes(`in place of ${old.id}`),
  );
  const held = /\((\d+) ms\)|after (\d+) ms/.exec(hold?.outcome.detail ?? '');
  const holdMs = held ? Number(held[1] ?? held[2]) : 0;
  const timings = (failover?.inputs.timings ?? {}) as { promotionMs?: number };
  const rel = (t: number | undefined | null): number => (t === undefined || t === null ? NaN : t - t0);
  const served = rel(failover ? failover.at + (timings.promotionMs ?? NaN) : undefined);
  const requests = [
    ...(load.trace ?? []).map(([s, d, st]) => [s, d, st] as const),
    ...first.trace.map(([s, d, st]) => [s, d, st] as const),
  ];
  const switchAt = t0 + served;
  const sends = [...first.trace.map(([s]) => s)].sort((a, b) => a - b);
  let gap = 0;
  for (let k = 1; k < sends.length; k++) gap = Math.max(gap, (sends[k] ?? 0) - (sends[k - 1] ?? 0));
  const loadAcks = (load.trace ?? [])
    .filter(([, d, st]) => st >= 200 && st < 300 && d >= switchAt)
    .map(([, d]) => d);
  return {
    lastAnswer: rel(suspect ? suspect.at - Number(suspect.inputs.silentMs) : undefined),
    suspected: rel(suspect?.at),
    holdMs,
    holdEnd: rel(hold ? hold.at + holdMs : suspect?.at),
    failoverAt: rel(failover?.at),
    promotionMs: timings.promotionMs ?? NaN,
    served,
    firstOkSent: rel(first.sentAt),
    firstOk: rel(first.at),
    openAtSwitch: requests.filter(([s, d]) => s <= switchAt && d > switchAt).length,
    firstLoadAck: rel(loadAcks.length ? Math.min(...loadAcks) : undefined),
    failedWrites: (load.trace ?? []).filter(([s, , st, w]) => w === 1 && s >= t0 && (st === 0 || st >= 500))
      .length,
    clientGapMs: gap,
  };
}

/** p50 and worst of each step over the runs. */
function summarize(runs: Breakdown[]): Record<string, { p50: number; worst: number }> {
  const out: Record<string, { p50: number; worst: number }> = {};
  for (const k of Object.keys(runs[0] ?? {}) as (keyof Breakdown)[]) {
    const v = runs
      .map((r) => r[k])
      .filter((x) => !Number.isNaN(x))
      .sort((a, b) => a - b);
    out[k] = { p50: v[Math.floor(v.length / 2)] ?? NaN, worst: v.at(-1) ?? NaN };
  }
  return out;
}

/**
 * Host loss, `runs` times on one cluster: the primary's host lost under unique writes → first write
 * acknowledged through the router; acknowledged writes lost; acknowledged by the old primary alone.
 * The lost host's agent is started again after each run (its instance re-created, on it or elsewhere).
 * Then one partition of the primary's host: cut → its agent's "self-fenced" line, and → the echo
 * elsewhere serving.
 */
async function hostLoss(runs: number): Promise<Record<string, unknown>> {
  const cluster = await NetnsCluster.start({
    hosts: { h1: 'z1', h2: 'z2', h3: 'z1' },
    replaceLostAfterMs: 3000,
  });
  try {
    const firstOk: number[] = [];
    const breakdowns: Breakdown[] = [];
    let lostAcked = 0;
    let splitBrain = 0;
    for (let i = 0; i < runs; i++) {
      const { primary: old, echo } = await cluster.pair(60_000);
      await cluster.inSync(echo.id);
      await cluster.startLoad(60, `r${i}`);
      await sleep(1000);
      const t0 = Date.now();
      cluster.loseHost(old.host);
      const first = await cluster.firstOkTrace(30_000);
      const ms = first.at === null ? NaN : first.at - t0;
      await sleep(1000);
      const load = await cluster.stopLoad(true);
      const next = (await cluster.primary()) ?? echo;
      lostAcked += (await cluster.missing(load.acked)).length;
      splitBrain += NetnsCluster.ackedAlone(load.acked, old, next).length;
      firstOk.push(ms);
      const b = breakdown(t0, old, first, load, await cluster.decisions());
      breakdowns.push(b);
      log(`host loss ${i + 1}/${runs}: ${old.host} lost, first write acknowledged after ${ms} ms`);
      log(
        `  ${Object.entries(b)
          .map(([k, v]) => `${k} ${typeof v === 'number' ? Math.round(v) : v}`)
          .join(', ')}`,
      );
      await cluster.startAgent(old.host);
    }
    // Partition: cut → the old primary fenced by its own agent (its log line), and → the echo serving.
    const { primary: old, echo } = await cluster.pair(60_000);
    await cluster.inSync(echo.id);
    const agent = cluster.agents.get(old.host)!;
    let fencedAt = NaN;
    // The agent's line says how long after its last lease renewal it fenced, against its bound: the
    // difference is how late its fence fell (what control's margin must cover).
    let fenceLateMs = NaN;
    agent.child.stderr?.on('data', (b: Buffer) => {
      const text = b.toString();
      if (!Number.isNaN(fencedAt) || !text.includes(`self-fenced primary ${old.id}`)) return;
      fencedAt = Date.now();
      const m = /no lease renewal for (\d+) ms \(bound (\d+) ms/.exec(text);
      if (m) fenceLateMs = Number(m[1]) - Number(m[2]);
    });
    const cut = Date.now();
    cluster.lab.partition(old.host);
    const served = await cluster.firstOk(30_000);
    const servedAt = served ?? NaN;
    while (Date.now() - cut < 30_000 && Number.isNaN(fencedAt)) await sleep(20);
    cluster.lab.heal(old.host);
    const sorted = firstOk.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
    const q = (p: number): number =>
      sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? NaN;
    return {
      runs,
      failedRuns: firstOk.length - sorted.length,
      hostLossP50Ms: q(0.5),
      hostLossP99Ms: q(0.99),
      partitionFencedMs: fencedAt - cut,
      partitionFenceLateMs: fenceLateMs,
      partitionServedMs: servedAt - cut,
      lostAcked,
      splitBrain,
      breakdown: summarize(breakdowns),
    };
  } finally {
    await cluster.close();
  }
}

log(`host loss (${lossRuns} runs) and a partition, three hosts in two zones…`);
const loss = await hostLoss(lossRuns);
lines.push(
  `host loss (${String(loss.runs)} runs, kv hot write-through, under unique writes): first acknowledged write after p50 ${String(loss.hostLossP50Ms)} ms, p99 ${String(loss.hostLossP99Ms)} ms; ${String(loss.lostAcked)} acknowledged lost; ${String(loss.splitBrain)} acknowledged by the old primary alone`,
  `partition of the primary's host: old primary fenced by its own agent ${String(loss.partitionFencedMs)} ms after the cut (${String(loss.partitionFenceLateMs)} ms after its bound); the echo elsewhere serving after ${String(loss.partitionServedMs)} ms`,
  'host loss step by step, ms after the kill (p50 / worst over the runs):',
  ...Object.entries(loss.breakdown as Record<string, { p50: number; worst: number }>).map(
    ([k, v]) =>
      `  ${k.padEnd(14)} ${String(Math.round(v.p50)).padStart(6)} ${String(Math.round(v.worst)).padStart(6)}`,
  ),
);
result = {
  bench: 'hosts',
  quick,
  hostLossP50Ms: loss.hostLossP50Ms,
  hostLossP99Ms: loss.hostLossP99Ms,
  partitionFencedMs: loss.partitionFencedMs,
  partitionFenceLateMs: loss.partitionFenceLateMs,
  partitionServedMs: loss.partitionServedMs,
  lostAcked: loss.lostAcked,
  splitBrain: loss.splitBrain,
  hostLossRuns: loss.runs,
  hostLossFailedRuns: loss.failedRuns,
  hostLossBreakdown: loss.breakdown,
  ...result,
};
process.stdout.write(`${lines.join('\n')}\n${JSON.stringify(result)}\n`);
