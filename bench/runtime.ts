// Process runtime overhead: start, exit detection, graceful stop and stats() of ProcessRuntime against the
// bare peer it wraps (node:child_process spawn with detached process groups) in the same run.
// `npm run bench -- runtime [--quick]`; last line is one JSON object.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ProcessRuntime, type InstanceExit } from '../src/runtime/index.js';

const quick = process.argv.includes('--quick');
const N = quick ? 10 : 40;
const dir = mkdtempSync(join(tmpdir(), 'understudy-bench-runtime-'));

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN;
}

async function rawRound(): Promise<{ start: number; exit: number; stop: number }> {
  let t = performance.now();
  const a = spawn('sleep', ['30'], { detached: true, stdio: 'ignore' });
  await new Promise((r) => a.once('spawn', r));
  const start = performance.now() - t;
  const aExit = new Promise((r) => a.once('exit', r));
  t = performance.now();
  process.kill(a.pid as number, 'SIGKILL');
  await aExit;
  const exit = performance.now() - t;
  const b = spawn('sleep', ['30'], { detached: true, stdio: 'ignore' });
  await new Promise((r) => b.once('spawn', r));
  const bExit = new Promise((r) => b.once('exit', r));
  t = performance.now();
  process.kill(-(b.pid as number), 'SIGTERM');
  await bExit;
  return { start, exit, stop: performance.now() - t };
}

let seq = 0;
async function runtimeRound(
  rt: ProcessRuntime,
): Promise<{ start: number; exit: number; stop: number; stats: number }> {
  const launch = (id: string) => ({
    instanceId: id,
    service: 'bench',
    host: 'local',
    command: ['sleep', '30'],
    cwd: dir,
    env: {},
    stateDir: join(dir, 'state', id),
    logDir: join(dir, 'logs'),
    logMaxBytes: 1 << 20,
    resources: { cpu: 1 },
  });
  const idA = `a${++seq}`;
  let t = performance.now();
  const a = await rt.start(launch(idA));
  const start = performance.now() - t;
  t = performance.now();
  await rt.stats(idA);
  const stats = performance.now() - t;
  const exited = new Promise<InstanceExit>((resolve) => {
    const off = rt.onExit((h, e) => {
      if (h.instanceId === idA) {
        off();
        resolve(e);
      }
    });
  });
  t = performance.now();
  process.kill(a.pid, 'SIGKILL');
  await exited;
  const exit = performance.now() - t;
  const idB = `b${seq}`;
  await rt.start(launch(idB));
  t = performance.now();
  await rt.stop(idB, { graceMs: 5000 });
  return { start, exit, stop: performance.now() - t, stats };
}

const rt = await ProcessRuntime.create({ graceMs: 5000 });
const raw: Array<{ start: number; exit: number; stop: number }> = [];
const ours: Array<{ start: number; exit: number; stop: number; stats: number }> = [];
try {
  for (let i = 0; i < N; i++) {
    raw.push(await rawRound());
    ours.push(await runtimeRound(rt));
  }
} finally {
  await rt.close({ graceMs: 500 });
  rmSync(dir, { recursive: true, force: true });
}

const rows = (['start', 'exit', 'stop'] as const).map((k) => {
  const o = ours.map((r) => r[k]);
  const p = raw.map((r) => r[k]);
  return {
    op: k,
    ours50: quantile(o, 0.5),
    ours95: quantile(o, 0.95),
    peer50: quantile(p, 0.5),
    peer95: quantile(p, 0.95),
  };
});
const statsMs = ours.map((r) => r.stats);
const limits = rt.limitsSupport();
process.stdout.write(
  `process runtime vs bare child_process spawn, ${N} rounds, limits: ${limits.supported ? limits.mechanism : 'unsupported'}\n`,
);
process.stdout.write(
  `${'op'.padEnd(8)}${'ours p50'.padStart(10)}${'ours p95'.padStart(10)}${'peer p50'.padStart(10)}${'peer p95'.padStart(10)}${'ratio p50'.padStart(11)}\n`,
);
for (const r of rows) {
  process.stdout.write(
    `${r.op.padEnd(8)}${r.ours50.toFixed(2).padStart(10)}${r.ours95.toFixed(2).padStart(10)}${r.peer50.toFixed(2).padStart(10)}${r.peer95.toFixed(2).padStart(10)}${(r.ours50 / r.peer50).toFixed(2).padStart(11)}\n`,
  );
}
process.stdout.write(
  `stats() p50 ${quantile(statsMs, 0.5).toFixed(2)} ms, p95 ${quantile(statsMs, 0.95).toFixed(2)} ms (ms everywhere)\n`,
);
const round = (x: number): number => Number(x.toFixed(2));
process.stdout.write(
  `${JSON.stringify({
    bench: 'runtime',
    quick,
    rounds: N,
    limits: limits.supported ? limits.mechanism : 'unsupported',
    startMsP50: round(rows[0]?.ours50 ?? NaN),
    startRatioP50: round((rows[0]?.ours50 ?? NaN) / (rows[0]?.peer50 ?? NaN)),
    exitDetectMsP50: round(rows[1]?.ours50 ?? NaN),
    exitDetectRatioP50: round((rows[1]?.ours50 ?? NaN) / (rows[1]?.peer50 ?? NaN)),
    stopMsP50: round(rows[2]?.ours50 ?? NaN),
    stopRatioP50: round((rows[2]?.ours50 ?? NaN) / (rows[2]?.peer50 ?? NaN)),
    statsMsP50: round(quantile(statsMs, 0.5)),
  })}\n`,
);
