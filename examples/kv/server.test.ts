// The kv example says who acknowledged a write and under which epoch (x-kv-instance, x-kv-epoch), so a
// chaos test's client can count the instances acknowledging writes per epoch (test/e2e/hosts-chaos.test.ts).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../../test/lib/etcd-server.js';

const server = fileURLToPath(new URL('./server.mjs', import.meta.url));
const running: { child: ChildProcess; dir: string }[] = [];

afterEach(async () => {
  for (const { child, dir } of running.splice(0)) {
    if (child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  }
});

async function start(env: Record<string, string> = {}): Promise<{ base: string; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'us-kv-example-'));
  const port = await freePort();
  const child = spawn(process.execPath, [server, '--port', String(port), '--state', join(dir, 'kv-9')], {
    env: { ...process.env, UNDERSTUDY_INSTANCE: '', ...env },
    stdio: 'ignore',
  });
  running.push({ child, dir });
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    const ok = await fetch(`${base}/healthz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return { base, dir };
    if (i > 100) throw new Error('the kv example did not start');
    await new Promise((r) => setTimeout(r, 50));
  }
}

const put = (base: string, key: string, epoch?: number): Promise<Response> =>
  fetch(`${base}/kv/${key}`, {
    method: 'PUT',
    body: 'v',
    headers: epoch === undefined ? {} : { 'x-understudy-epoch': String(epoch) },
  });

describe('the kv example', () => {
  it('answers an acknowledged write with its instance id and the epoch it was applied under, and a refused one without', async () => {
    const { base } = await start({ UNDERSTUDY_INSTANCE: 'kv-7' });
    const ok = await put(base, 'a', 3);
    expect(ok.status).toBe(200);
    expect([ok.headers.get('x-kv-instance'), ok.headers.get('x-kv-epoch')]).toEqual(['kv-7', '3']);
    const stale = await put(base, 'b', 2);
    expect(stale.status).toBe(409);
    expect(stale.headers.get('x-kv-instance')).toBeNull();
  });

  it('names itself after its state directory without UNDERSTUDY_INSTANCE, and says epoch 0 for an untagged write', async () => {
    const { base } = await start();
    const ok = await put(base, 'a');
    expect([ok.headers.get('x-kv-instance'), ok.headers.get('x-kv-epoch')]).toEqual(['kv-9', '0']);
  });
});
