import { spawn, type ChildProcess } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { LivenessWatch, processState, type FailureVerdict } from './liveness-watch.js';

const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
});

/** A node HTTP server that prints its port; `/spin` makes it busy-loop forever (alive, silent). */
async function server(): Promise<{ child: ChildProcess; port: number }> {
  const code = `const s=require('http').createServer((q,r)=>{if(q.url==='/spin'){r.end();setImmediate(()=>{for(;;){}});return}r.end('ok')});s.listen(0,'127.0.0.1',()=>console.log(s.address().port))`;
  const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  const port = await new Promise<number>((resolve) =>
    child.stdout?.once('data', (d: Buffer) => resolve(Number(d.toString().trim()))),
  );
  return { child, port };
}

function watch(pid: number, port: number, signal: AbortSignal): Promise<FailureVerdict> {
  return new Promise((resolve) =>
    LivenessWatch.start(
      { pid, target: { kind: 'http', host: '127.0.0.1', port, path: '/' }, intervalMs: 50, phiThreshold: 8 },
      resolve,
      signal,
    ),
  );
}

describe('LivenessWatch', () => {
  it('declares a stopped process hung, with its process state as evidence', async () => {
    const { child, port } = await server();
    const abort = new AbortController();
    const verdict = watch(child.pid ?? 0, port, abort.signal);
    await new Promise((r) => setTimeout(r, 300));
    child.kill('SIGSTOP');
    const v = await verdict;
    abort.abort();
    expect(v.kind).toBe('hang');
    expect(v.evidence.procState).toBe('T');
    expect(v.detail).toMatch(/is stopped/);
    child.kill('SIGCONT');
  });

  it('declares a live process that stopped answering hung, by phi', async () => {
    const { child, port } = await server();
    const abort = new AbortController();
    const verdict = watch(child.pid ?? 0, port, abort.signal);
    await new Promise((r) => setTimeout(r, 300));
    await fetch(`http://127.0.0.1:${port}/spin`);
    const v = await verdict;
    abort.abort();
    expect(processState(child.pid ?? 0)).toBe('R');
    expect(v.evidence.phi).toBeGreaterThanOrEqual(8);
    expect(v.detail).toMatch(/no heartbeat for \d+ ms/);
  });

  it('gives no verdict for a healthy process', async () => {
    const { child, port } = await server();
    const abort = new AbortController();
    let verdict: FailureVerdict | undefined;
    void watch(child.pid ?? 0, port, abort.signal).then((v) => (verdict = v));
    await new Promise((r) => setTimeout(r, 800));
    abort.abort();
    expect(verdict).toBeUndefined();
  });
});
