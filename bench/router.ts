// Router data-plane benchmark: wrk against the backend directly, HAProxy (http and tcp mode) and the
// built-in router (HTTP and TCP mode), same backend, same run, same wrk settings; rounds interleave the
// targets and medians are reported. Then a paced load at half of the router's saturation (wrk with a
// random per-connection think time: Poisson arrivals) measures the p99 latency the router adds over the
// direct path; the same with a constant think time (50 connections in lockstep, so requests arrive in
// bursts of 50 — the instantaneous load is saturation, not half of it) is reported for information.
// `npm run bench -- router [--quick]`; last line is one JSON object.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const quick = process.argv.includes('--quick');
const DURATION_S = quick ? 2 : 5;
const ROUNDS = quick ? 1 : 3;
const CONNECTIONS = 50;
const THREADS = 1;
const HALF_LOAD_S = quick ? 2 : 4;
const HALF_LOAD_ROUNDS = quick ? 1 : 5;
const HALF_LOAD_CONNECTIONS = 50;

for (const [cmd, pkg] of [
  ['wrk', 'wrk'],
  ['haproxy', 'haproxy'],
] as const) {
  if (spawnSync('sh', ['-c', `command -v ${cmd}`]).status !== 0) {
    process.stdout.write(
      `router bench: '${cmd}' is not installed (Debian package '${pkg}': apt-get install -y ${pkg}).\n`,
    );
    process.stdout.write(`${JSON.stringify({ bench: 'router', error: `${cmd} not installed` })}\n`);
    process.exit(1);
  }
}

const children: ChildProcess[] = [];
const dir = mkdtempSync(join(tmpdir(), 'understudy-bench-router-'));
function cleanup(): void {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
}
process.on('exit', cleanup);
process.on('SIGINT', () => process.exit(130));

/** CPU time (user + system) a process has used so far, ms; NaN when it cannot be read. */
function cpuMs(pid: number | undefined): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / CLOCK_TICKS;
  } catch {
    return NaN;
  }
}
const CLOCK_TICKS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

function startNode(script: string, args: string[]): Promise<{ port: number; pid: number | undefined }> {
  const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /port=(\d+)/.exec(out);
      if (m) resolve({ port: Number(m[1]), pid: child.pid });
    });
    child.once('exit', (code) => reject(new Error(`${script} exited with ${code}`)));
  });
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const p = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return p;
}

async function waitListening(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((r) => {
      const s = connect(port, '127.0.0.1', () => {
        s.destroy();
        r(true);
      });
      s.on('error', () => r(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nothing listens on ${port}`);
}

async function startHaproxy(
  mode: 'http' | 'tcp',
  backendPort: number,
  threads?: number,
): Promise<{ port: number; pid: number | undefined }> {
  const port = await freePort();
  const cfg = join(dir, `haproxy-${mode}-${threads ?? 'auto'}.cfg`);
  writeFileSync(
    cfg,
    [
      'global',
      '  maxconn 4000',
      ...(threads ? [`  nbthread ${threads}`] : []),
      'defaults',
      `  mode ${mode}`,
      '  timeout connect 2s',
      '  timeout client 30s',
      '  timeout server 30s',
      ...(mode === 'http' ? ['  option http-keep-alive', '  http-reuse always'] : []),
      'frontend public',
      `  bind 127.0.0.1:${port}`,
      '  default_backend app',
      'backend app',
      `  server s1 127.0.0.1:${backendPort}`,
      '',
    ].join('\n'),
  );
  const child = spawn('haproxy', ['-db', '-f', cfg], { stdio: ['ignore', 'ignore', 'inherit'] });
  children.push(child);
  await waitListening(port);
  return { port, pid: child.pid };
}

interface WrkResult {
  rps: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  /** CPU time the proxy process (or the backend, for `direct`) spent per request, µs: robust to other load on the machine. */
  cpuUsPerReq: number;
}

function toMs(v: string, unit: string): number {
  const x = Number(v);
  return unit === 'us' ? x / 1000 : unit === 's' ? x * 1000 : unit === 'm' ? x * 60_000 : x;
}

function parseWrk(out: string): Omit<WrkResult, 'cpuUsPerReq'> & { requests: number } {
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN);
  const pct = (p: string): number => {
    const m = new RegExp(`^\\s+${p}%\\s+([\\d.]+)(us|ms|s|m)`, 'm').exec(out);
    return m ? toMs(m[1] as string, m[2] as string) : NaN;
  };
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? 0);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const sockErrors = sock ? sock.slice(1).reduce((a, b) => a + Number(b), 0) : 0;
  const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? NaN);
  return { rps, p50Ms: pct('50'), p99Ms: pct('99'), errors: non2xx + sockErrors, requests };
}

function wrk(port: number, pid: number | undefined): WrkResult {
  const cpu0 = cpuMs(pid);
  const r = spawnSync(
    'wrk',
    [`-t${THREADS}`, `-c${CONNECTIONS}`, `-d${DURATION_S}s`, '--latency', `http://127.0.0.1:${port}/`],
    { encoding: 'utf8' },
  );
  const w = parseWrk(r.stdout);
  const cpuUsPerReq = ((cpuMs(pid) - cpu0) * 1000) / w.requests;
  return { rps: w.rps, p50Ms: w.p50Ms, p99Ms: w.p99Ms, errors: w.errors, cpuUsPerReq };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n === 0
    ? NaN
    : n % 2
      ? (s[(n - 1) / 2] as number)
      : ((s[n / 2 - 1] as number) + (s[n / 2] as number)) / 2;
}

interface LoadResult {
  rate: number;
  achievedRps: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  /** CPU time of the proxy (the backend, for `direct`) per request, µs, all its threads. */
  cpuUsPerReq: number;
  /**
   * Time its threads were runnable but waiting for a CPU, per request, µs (/proc schedstat): how much
   * of the latency is the scheduler's, i.e. the other load on the machine.
   */
  runQueueWaitUsPerReq: number;
}

/** CPU time and run-queue wait (ns) of all threads of a process so far; NaN when unreadable. */
function schedNs(pid: number | undefined): { run: number; wait: number } {
  try {
    let run = 0;
    let wait = 0;
    for (const t of readdirSync(`/proc/${pid}/task`)) {
      const [r, w] = readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ').map(Number);
      run += r ?? NaN;
      wait += w ?? NaN;
    }
    return { run, wait };
  } catch {
    return { run: NaN, wait: NaN };
  }
}

type Pacing = 'poisson' | 'lockstep';

/**
 * Load at about `rate` req/s: wrk with a think time per connection (its Lua `delay()` hook), so each
 * of the connections sends one request every `1000 * connections / rate` ms on average. A closed loop
 * with pauses (wrk has no fixed-rate mode; wrk2 is not packaged): a stalled target lowers the achieved
 * rate instead of queueing (coordinated omission, the same for every target), so the achieved rate is
 * reported beside the latency. `poisson`: exponentially distributed think times from a fixed seed (the
 * same sequence for every target), so the merged arrivals of the connections are close to a Poisson
 * process at `rate`. `lockstep`: a constant think time; the connections start together and stay in
 * phase, so requests arrive in bursts of `connections` — a measure of burst absorption, not of half load.
 */
function pacedLoad(port: number, pid: number | undefined, rate: number, pacing: Pacing): LoadResult {
  const meanMs = (1000 * HALF_LOAD_CONNECTIONS) / rate;
  const delayMs = Math.max(1, Math.round(meanMs));
  const script = join(dir, `delay-${pacing}-${delayMs}.lua`);
  writeFileSync(
    script,
    pacing === 'lockstep'
      ? `function delay()\n  return ${delayMs}\nend\n`
      : `math.randomseed(42)\nfunction delay()\n  return math.floor(-${meanMs.toFixed(3)} * math.log(1 - math.random()) + 0.5)\nend\n`,
  );
  const s0 = schedNs(pid);
  const r = spawnSync(
    'wrk',
    [
      `-t${THREADS}`,
      `-c${HALF_LOAD_CONNECTIONS}`,
      `-d${HALF_LOAD_S}s`,
      '--latency',
      '-s',
      script,
      `http://127.0.0.1:${port}/`,
    ],
    { encoding: 'utf8' },
  );
  const s1 = schedNs(pid);
  const w = parseWrk(r.stdout);
  return {
    rate,
    achievedRps: w.rps,
    p50Ms: w.p50Ms,
    p99Ms: w.p99Ms,
    errors: w.errors,
    cpuUsPerReq: (s1.run - s0.run) / 1000 / w.requests,
    runQueueWaitUsPerReq: (s1.wait - s0.wait) / 1000 / w.requests,
  };
}

const round2 = (x: number): number => Math.round(x * 100) / 100;

const backend = await startNode(join(import.meta.dirname, 'lib', 'router-backend.ts'), []);
const backendPort = backend.port;
const procs = {
  direct: backend,
  haproxyHttp: await startHaproxy('http', backendPort),
  routerHttp: await startNode(join(import.meta.dirname, 'lib', 'router-process.ts'), [
    'http',
    String(backendPort),
  ]),
  haproxyTcp: await startHaproxy('tcp', backendPort),
  routerTcp: await startNode(join(import.meta.dirname, 'lib', 'router-process.ts'), [
    'tcp',
    String(backendPort),
  ]),
  // For information: HAProxy held to one thread, like the single-threaded built-in router.
  haproxyHttp1T: await startHaproxy('http', backendPort, 1),
  // For information: the built-in router with its raw-socket fast path off (node:http + undici only).
  routerHttpNodeHttp: await startNode(join(import.meta.dirname, 'lib', 'router-process.ts'), [
    'http-nodehttp',
    String(backendPort),
  ]),
};
type Target = keyof typeof procs;
const targets = Object.fromEntries(Object.entries(procs).map(([k, v]) => [k, v.port])) as Record<
  Target,
  number
>;
const names = Object.keys(targets) as Target[];

const loadBefore = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
// Warm-up: JIT, connection pools.
for (const n of names) spawnSync('wrk', ['-t1', '-c10', '-d1s', `http://127.0.0.1:${targets[n]}/`]);
process.stdout.write(
  `load average before the run: ${loadBefore} (2 shared cores: absolute numbers are noisy, ratios are same-run)\n`,
);

const runs: Record<Target, WrkResult[]> = {
  direct: [],
  haproxyHttp: [],
  routerHttp: [],
  haproxyTcp: [],
  routerTcp: [],
  haproxyHttp1T: [],
  routerHttpNodeHttp: [],
};
for (let round = 0; round < ROUNDS; round++) {
  // Rotate the order each round so drift in machine load does not favour one target.
  const order = names.map((_, i) => names[(i + round) % names.length] as Target);
  for (const n of order) runs[n].push(wrk(procs[n].port, procs[n].pid));
}
const summary = Object.fromEntries(
  names.map((n) => {
    const rs = runs[n];
    return [
      n,
      {
        rps: Math.round(median(rs.map((r) => r.rps))),
        p50Ms: round2(median(rs.map((r) => r.p50Ms))),
        p99Ms: round2(median(rs.map((r) => r.p99Ms))),
        errors: rs.reduce((a, r) => a + r.errors, 0),
        cpuUsPerReq: round2(median(rs.map((r) => r.cpuUsPerReq))),
      },
    ];
  }),
) as Record<Target, WrkResult>;

const halfRate = Math.max(100, Math.round(summary.routerHttp.rps / 2));
const halfNames = ['direct', 'haproxyHttp', 'routerHttp'] as const;
type HalfName = (typeof halfNames)[number];
interface HalfLoad {
  pacing: Pacing;
  rounds: number;
  direct: LoadResult;
  haproxyHttp: LoadResult;
  routerHttp: LoadResult;
  /** p99 of each round, ms, per target (rounds interleave the targets). */
  p99sMs: Record<HalfName, number[]>;
  /** Median over rounds of (target p99 − direct p99) within the same round: paired, so drift in machine load cancels. */
  addedP99Ms: number;
  haproxyAddedP99Ms: number;
  /**
   * Lowest p99 over the rounds minus the direct path's lowest: other load on the machine only adds
   * latency, so the quietest round is the closest to what the proxy itself adds. For information.
   */
  addedP99MsQuietestRound: number;
  haproxyAddedP99MsQuietestRound: number;
}
function halfLoad(pacing: Pacing, rounds: number): HalfLoad {
  const runs: Record<HalfName, LoadResult[]> = { direct: [], haproxyHttp: [], routerHttp: [] };
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < halfNames.length; i++) {
      const n = halfNames[(i + round) % halfNames.length] as HalfName;
      runs[n].push(pacedLoad(targets[n], procs[n].pid, halfRate, pacing));
    }
  }
  const of = (rs: LoadResult[]): LoadResult => ({
    rate: halfRate,
    errors: rs.reduce((acc, r) => acc + r.errors, 0),
    achievedRps: Math.round(median(rs.map((r) => r.achievedRps))),
    p50Ms: round2(median(rs.map((r) => r.p50Ms))),
    p99Ms: round2(median(rs.map((r) => r.p99Ms))),
    cpuUsPerReq: round2(median(rs.map((r) => r.cpuUsPerReq))),
    runQueueWaitUsPerReq: round2(median(rs.map((r) => r.runQueueWaitUsPerReq))),
  });
  const p99s = (n: HalfName): number[] => runs[n].map((r) => round2(r.p99Ms));
  const quietest = (n: HalfName): number =>
    round2(Math.min(...runs[n].map((r) => r.p99Ms)) - Math.min(...runs.direct.map((r) => r.p99Ms)));
  const added = (n: HalfName): number =>
    round2(median(runs[n].map((r, i) => r.p99Ms - (runs.direct[i] as LoadResult).p99Ms)));
  return {
    pacing,
    rounds,
    direct: of(runs.direct),
    haproxyHttp: of(runs.haproxyHttp),
    routerHttp: of(runs.routerHttp),
    p99sMs: { direct: p99s('direct'), haproxyHttp: p99s('haproxyHttp'), routerHttp: p99s('routerHttp') },
    addedP99Ms: added('routerHttp'),
    haproxyAddedP99Ms: added('haproxyHttp'),
    addedP99MsQuietestRound: quietest('routerHttp'),
    haproxyAddedP99MsQuietestRound: quietest('haproxyHttp'),
  };
}
const half = halfLoad('poisson', HALF_LOAD_ROUNDS);
const lockstep = halfLoad('lockstep', ROUNDS);
const { addedP99Ms, haproxyAddedP99Ms } = half;
const loadAfter = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

const pad = (s: string | number, n: number): string => String(s).padStart(n);
process.stdout.write(
  `\nrouter bench: wrk -t${THREADS} -c${CONNECTIONS} -d${DURATION_S}s, ${ROUNDS} interleaved round(s), medians; node ${process.version}\n`,
);
process.stdout.write(
  `${'target'.padEnd(20)}${pad('req/s', 10)}${pad('p50 ms', 9)}${pad('p99 ms', 9)}${pad('errors', 8)}${pad('vs direct', 11)}${pad('cpu µs/req', 12)}\n`,
);
for (const n of names) {
  const s = summary[n];
  process.stdout.write(
    `${n.padEnd(20)}${pad(s.rps, 10)}${pad(s.p50Ms.toFixed(2), 9)}${pad(s.p99Ms.toFixed(2), 9)}${pad(s.errors, 8)}${pad((s.rps / summary.direct.rps).toFixed(2), 11)}${pad(s.cpuUsPerReq.toFixed(1), 12)}\n`,
  );
}
const ratioVsHaproxy = round2(summary.routerHttp.rps / summary.haproxyHttp.rps);
const ratioVsHaproxyTcp = round2(summary.routerTcp.rps / summary.haproxyTcp.rps);
const ratioVsHaproxy1Thread = round2(summary.routerHttp.rps / summary.haproxyHttp1T.rps);
const cpuRatioVsHaproxy = round2(summary.haproxyHttp.cpuUsPerReq / summary.routerHttp.cpuUsPerReq);
const cpuRatioVsHaproxyTcp = round2(summary.haproxyTcp.cpuUsPerReq / summary.routerTcp.cpuUsPerReq);
process.stdout.write(
  `\nbuilt-in / HAProxy req/s: http ${ratioVsHaproxy} (goal >= 0.5), tcp ${ratioVsHaproxyTcp} (goal >= 0.8); http vs HAProxy nbthread 1: ${ratioVsHaproxy1Thread}\n`,
);
process.stdout.write(
  `HAProxy / built-in CPU per request (efficiency, robust to other load): http ${cpuRatioVsHaproxy}, tcp ${cpuRatioVsHaproxyTcp}\n`,
);
process.stdout.write(
  `(cpu µs/req of 'direct' is the backend's own cost; proxies' figures are the proxy process alone)\n`,
);
for (const h of [half, lockstep]) {
  process.stdout.write(
    h.pacing === 'poisson'
      ? `paced load at half of the router's saturation (${halfRate} req/s asked; wrk -c${HALF_LOAD_CONNECTIONS}, random think times: Poisson arrivals; ${HALF_LOAD_S}s x ${h.rounds} interleaved rounds, medians):\n`
      : `for information, the same rate with a constant think time (the ${HALF_LOAD_CONNECTIONS} connections in lockstep: bursts of ${HALF_LOAD_CONNECTIONS} requests; ${HALF_LOAD_S}s x ${h.rounds} rounds):\n`,
  );
  for (const n of halfNames) {
    const r = h[n];
    process.stdout.write(
      `  ${n.padEnd(12)} achieved ${pad(r.achievedRps, 6)} req/s  p50 ${r.p50Ms.toFixed(2)} ms  p99 ${r.p99Ms.toFixed(2)} ms  errors ${r.errors}  cpu ${r.cpuUsPerReq.toFixed(0)} µs/req  run-queue wait ${r.runQueueWaitUsPerReq.toFixed(0)} µs/req  p99 per round [${h.p99sMs[n].join(', ')}]\n`,
    );
  }
  process.stdout.write(
    `  added p99 over direct (median of per-round differences): router ${h.addedP99Ms} ms${h.pacing === 'poisson' ? ' (goal <= 2)' : ''}, HAProxy ${h.haproxyAddedP99Ms} ms; quietest rounds: router ${h.addedP99MsQuietestRound} ms, HAProxy ${h.haproxyAddedP99MsQuietestRound} ms\n`,
  );
}
process.stdout.write(`load average after the run: ${loadAfter}\n`);
process.stdout.write(
  `${JSON.stringify({
    bench: 'router',
    quick,
    wrk: { threads: THREADS, connections: CONNECTIONS, durationS: DURATION_S, rounds: ROUNDS },
    loadAverage: { before: loadBefore, after: loadAfter },
    ...summary,
    ratioVsHaproxy,
    ratioVsHaproxyTcp,
    cpuRatioVsHaproxy,
    cpuRatioVsHaproxyTcp,
    ratioVsHaproxy1Thread,
    halfLoad: { rate: halfRate, durationS: HALF_LOAD_S, ...half },
    halfLoadLockstep: lockstep,
    addedP99Ms,
    haproxyAddedP99Ms,
  })}\n`,
);
cleanup();
process.exit(0);
