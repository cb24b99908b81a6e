import { createServer, type Server } from 'node:http';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runHookRequest } from './hook-runner.js';

const dir = mkdtempSync(join(tmpdir(), 'hook-runner-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Running (not gone, not a zombie waiting to be reaped). */
const alive = (pid: number): boolean => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
};

describe('exec hooks', () => {
  it('run in the given cwd with the context in the environment, and keep stdout', async () => {
    const r = await runHookRequest({
      name: 'lag',
      exec: { argv: ['sh', '-c', 'pwd; printf "%s" "$UNDERSTUDY_INSTANCE"'], cwd: dir },
      env: { UNDERSTUDY_INSTANCE: 'cache-2' },
      timeoutMs: 5000,
    });
    expect(r.ok).toBe(true);
    expect(r.stdout).toBe(`${dir}\ncache-2`);
  });

  it('fail on a non-zero exit with its status and stderr', async () => {
    const r = await runHookRequest({
      name: 'promote',
      exec: { argv: ['sh', '-c', 'echo "not a replica" >&2; exit 3'], cwd: dir },
      env: {},
      timeoutMs: 5000,
    });
    expect(r).toMatchObject({ ok: false, timedOut: false, exitCode: 3 });
    expect(r.stderr).toContain('not a replica');
  });

  it('fail with the reason when the program does not exist', async () => {
    const r = await runHookRequest({
      name: 'follow',
      exec: { argv: ['/nonexistent/hook'], cwd: dir },
      env: {},
      timeoutMs: 5000,
    });
    expect(r.ok).toBe(false);
    expect(r.stderr).toMatch(/ENOENT/);
  });

  it('kill the whole process group at the timeout, children included', async () => {
    const pidFile = join(dir, 'child.pid');
    const r = await runHookRequest({
      name: 'follow',
      exec: { argv: ['sh', '-c', `sleep 30 & echo $! > ${pidFile}; wait`], cwd: dir },
      env: {},
      timeoutMs: 300,
    });
    expect(r).toMatchObject({ ok: false, timedOut: true });
    const child = Number(readFileSync(pidFile, 'utf8').trim());
    await new Promise((res) => setTimeout(res, 100));
    expect(alive(child)).toBe(false);
  });
});

describe('http hooks', () => {
  let server: Server;
  let port = 0;
  const bodies: unknown[] = [];
  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        bodies.push(JSON.parse(body));
        if (req.url === '/slow') return; // never answers
        res.statusCode = req.url === '/ok' ? 200 : 500;
        res.end(req.url === '/ok' ? '{"lagBytes":7}' : 'broken');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as { port: number }).port;
  });
  afterAll(() => {
    server.closeAllConnections();
    server.close();
  });

  it('POST the context as JSON and return the body', async () => {
    const r = await runHookRequest({
      name: 'lag',
      http: { port, path: '/ok' },
      env: { UNDERSTUDY_HOOK: 'lag' },
      timeoutMs: 2000,
    });
    expect(r).toMatchObject({ ok: true, status: 200, stdout: '{"lagBytes":7}' });
    expect(bodies.at(-1)).toEqual({ UNDERSTUDY_HOOK: 'lag' });
  });

  it('fail on an error status, and on no answer within the timeout', async () => {
    const bad = await runHookRequest({ name: 'x', http: { port, path: '/err' }, env: {}, timeoutMs: 2000 });
    expect(bad).toMatchObject({ ok: false, status: 500, stdout: 'broken' });
    const slow = await runHookRequest({ name: 'x', http: { port, path: '/slow' }, env: {}, timeoutMs: 200 });
    expect(slow).toMatchObject({ ok: false, timedOut: true });
  });
});
