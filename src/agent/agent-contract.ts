import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCode } from '../errors/index.js';
import type { HealthVerdict } from '../health/index.js';
import type { InstanceExit, InstanceHandle, InstanceLaunch } from '../runtime/index.js';
import type { Agent } from './agent.js';

/** What {@link runAgentContract} needs of an implementation: a fresh agent per test. */
export interface AgentFixture {
  agent: Agent;
  /** Stops the agent (and whatever serves it) and every instance it started. */
  destroy(): Promise<void>;
}

/**
 * A tiny instance: an HTTP server on $PORT answering 200 on `/`, 204 on `POST /hook` (and writing
 * `hooked` into its state directory), and exiting 0 on SIGTERM.
 */
const TINY_SERVER = `
const http = require('node:http'), fs = require('node:fs'), path = require('node:path');
const s = http.createServer((req, res) => {
  if (req.method === 'POST' && req.url === '/hook') {
    fs.writeFileSync(path.join(process.env.STATE_DIR, 'hooked'), 'yes');
    res.statusCode = 204; return res.end();
  }
  res.end('ok');
});
s.listen(Number(process.env.PORT), '127.0.0.1', () => fs.writeFileSync(path.join(process.env.STATE_DIR, 'ready'), ''));
process.on('SIGTERM', () => process.exit(0));
`;

async function until<T>(
  what: string,
  fn: () => T | undefined | Promise<T | undefined>,
  ms = 10_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * The contract every {@link Agent} implementation keeps, with real processes: `LocalAgent` in-process,
 * and `RemoteAgent` → `AgentServer` → `LocalAgent` over loopback pass the same assertions.
 */
export function runAgentContract(name: string, createFixture: () => Promise<AgentFixture>): void {
  describe(`Agent contract: ${name}`, () => {
    let fixture: AgentFixture;
    let agent: Agent;
    let dir: string;
    let n = 0;

    beforeEach(async () => {
      dir = mkdtempSync(join(tmpdir(), 'understudy-agent-contract-'));
      fixture = await createFixture();
      agent = fixture.agent;
    });

    afterEach(async () => {
      await fixture.destroy();
      rmSync(dir, { recursive: true, force: true });
    });

    async function launch(
      port?: number,
    ): Promise<{ handle: InstanceHandle; port: number; stateDir: string }> {
      const p = port ?? (await agent.allocatePort());
      const id = `tiny-${++n}`;
      const stateDir = join(dir, id);
      const spec: InstanceLaunch = {
        instanceId: id,
        service: 'tiny',
        host: agent.host,
        command: [process.execPath, '-e', TINY_SERVER],
        cwd: dir,
        env: { PORT: String(p), STATE_DIR: stateDir },
        stateDir,
        logDir: join(dir, 'logs'),
        logMaxBytes: 1024 * 1024,
      };
      const handle = await agent.start(spec);
      await until('the instance to listen', () => existsSync(join(stateDir, 'ready')));
      return { handle, port: p, stateDir };
    }

    function nextExit(instanceId: string): Promise<{ handle: InstanceHandle; exit: InstanceExit }> {
      return new Promise((resolve) => {
        const off = agent.onExit((handle, exit) => {
          if (handle.instanceId !== instanceId) return;
          off();
          resolve({ handle, exit });
        });
      });
    }

    it('starts an instance, reports it running with its pid and stats, and stops it with an exit event', async () => {
      const { handle } = await launch();
      expect(handle.pid).toBeGreaterThan(0);
      expect(handle.host).toBe(agent.host);
      const seen = await agent.instance(handle.instanceId);
      expect(seen?.pid).toBe(handle.pid);
      expect(seen?.exit).toBeUndefined();
      const stats = await agent.stats(handle.instanceId);
      expect(stats?.rssBytes).toBeGreaterThan(0);
      const exited = nextExit(handle.instanceId);
      const exit = await agent.stop(handle.instanceId, { graceMs: 2000 });
      expect(exit.code).toBe(0);
      const event = await exited;
      expect(event.handle.pid).toBe(handle.pid);
      expect(event.exit.code).toBe(0);
      expect((await agent.instance(handle.instanceId))?.exit?.code).toBe(0);
      expect(await agent.stats(handle.instanceId)).toBeUndefined();
    });

    it('reports a kill by signal and a fence as exits, and fencing a gone instance does not throw', async () => {
      const a = await launch();
      const killed = nextExit(a.handle.instanceId);
      await agent.kill(a.handle.instanceId, 'SIGKILL');
      expect((await killed).exit.signal).toBe('SIGKILL');
      const b = await launch();
      const fenced = nextExit(b.handle.instanceId);
      await agent.fence(b.handle.instanceId);
      expect((await fenced).exit.signal).toBe('SIGKILL');
      await expect(agent.fence(b.handle.instanceId)).resolves.toBeUndefined();
      await expect(agent.fence('never-started')).resolves.toBeUndefined();
    });

    it('refuses operations on an unknown instance with UNDERSTUDY_ERR_RUNTIME_UNKNOWN_INSTANCE', async () => {
      await expect(agent.stop('no-such-instance')).rejects.toMatchObject({
        code: ErrorCode.RuntimeUnknownInstance,
      });
      await expect(agent.kill('no-such-instance', 'SIGTERM')).rejects.toMatchObject({
        code: ErrorCode.RuntimeUnknownInstance,
      });
      expect(await agent.instance('no-such-instance')).toBeUndefined();
    });

    it('adopts its own running instance again, and refuses a handle that is not that process', async () => {
      const { handle } = await launch();
      const { exit: _exit, ...live } = handle;
      expect(await agent.adopt(live)).toBe(true);
      expect(await agent.adopt({ ...live, instanceId: 'impostor', startTimeTicks: 1 })).toBe(false);
      await agent.stop(handle.instanceId, { graceMs: 2000 });
    });

    it('allocates a free port, probes an instance on it and runs HTTP and signal hooks on it', async () => {
      const { handle, port, stateDir } = await launch();
      expect(port).toBeGreaterThan(0);
      const ok = await agent.probe({ kind: 'http', host: agent.address, port, path: '/' }, 2000);
      expect(ok.ok).toBe(true);
      expect((await agent.probe({ kind: 'tcp', host: agent.address, port }, 2000)).ok).toBe(true);
      const free = await agent.allocatePort();
      expect((await agent.probe({ kind: 'tcp', host: agent.address, port: free }, 2000)).ok).toBe(false);
      expect(await agent.runHook(handle.instanceId, { http: { port, path: '/hook' } }, 2000)).toBe(204);
      expect(readFileSync(join(stateDir, 'hooked'), 'utf8')).toBe('yes');
      const exited = nextExit(handle.instanceId);
      expect(await agent.runHook(handle.instanceId, { signal: 'SIGTERM' }, 2000)).toBeUndefined();
      expect((await exited).exit.code).toBe(0);
    });

    it('runs an external-echo hook on the host: exec with its context and output, failures as results, HTTP to the instance', async () => {
      const ok = await agent.runExternalHook({
        name: 'lag',
        exec: { argv: ['sh', '-c', 'printf \'{"lagBytes":%s}\' "$UNDERSTUDY_EPOCH"'], cwd: dir },
        env: { UNDERSTUDY_EPOCH: '7' },
        timeoutMs: 5000,
      });
      expect(ok).toMatchObject({ ok: true, stdout: '{"lagBytes":7}' });
      const failed = await agent.runExternalHook({
        name: 'promote',
        exec: { argv: ['sh', '-c', 'echo refused >&2; exit 2'], cwd: dir },
        env: {},
        timeoutMs: 5000,
      });
      expect(failed).toMatchObject({ ok: false, timedOut: false, exitCode: 2 });
      expect(failed.stderr).toContain('refused');
      const slow = await agent.runExternalHook({
        name: 'follow',
        exec: { argv: ['sleep', '30'], cwd: dir },
        env: {},
        timeoutMs: 200,
      });
      expect(slow).toMatchObject({ ok: false, timedOut: true });
      const { port, stateDir } = await launch();
      const http = await agent.runExternalHook({
        name: 'follow',
        http: { port, path: '/hook' },
        env: {},
        timeoutMs: 2000,
      });
      expect(http).toMatchObject({ ok: true, status: 204 });
      expect(readFileSync(join(stateDir, 'hooked'), 'utf8')).toBe('yes');
    });

    it('watches an instance: health verdicts arrive until the watch is aborted', async () => {
      const { handle, port } = await launch();
      const verdicts: HealthVerdict[] = [];
      const ac = new AbortController();
      agent.watch(
        {
          instanceId: handle.instanceId,
          health: {
            target: { kind: 'http', host: agent.address, port, path: '/' },
            intervalMs: 50,
            timeoutMs: 1000,
            failureThreshold: 1,
            startPeriodMs: 0,
          },
        },
        { onHealth: (v) => verdicts.push(v), onHang: () => undefined },
        ac.signal,
      );
      await until('a healthy verdict', () => verdicts.find((v) => v.healthy));
      await agent.stop(handle.instanceId, { graceMs: 2000 });
      await until('an unhealthy verdict', () => verdicts.find((v) => !v.healthy));
      ac.abort();
      await new Promise((r) => setTimeout(r, 300));
      const count = verdicts.length;
      await new Promise((r) => setTimeout(r, 300));
      expect(verdicts.length).toBe(count);
    });

    it('snapshots, compares, prepares and removes state directories owner-only', async () => {
      const a = join(dir, 'a');
      mkdirSync(join(a, 'sub'), { recursive: true });
      writeFileSync(join(a, 'sub', 'f'), 'data');
      const b = join(dir, 'b');
      await agent.snapshotState({ host: agent.host, stateDir: a }, b);
      expect(readFileSync(join(b, 'sub', 'f'), 'utf8')).toBe('data');
      expect(statSync(b).mode & 0o777).toBe(0o700);
      expect(await agent.compareState(a, b)).toEqual([]);
      writeFileSync(join(b, 'sub', 'f'), 'changed');
      expect((await agent.compareState(a, b)).map((d) => d.path)).toEqual(['sub/f']);
      await expect(
        agent.snapshotState({ host: 'another-host', stateDir: a }, join(dir, 'c')),
      ).rejects.toMatchObject({ code: ErrorCode.StateDir });
      const echo = join(dir, 'echo');
      await agent.prepareSyncTarget(echo);
      expect(statSync(echo).mode & 0o777).toBe(0o700);
      await agent.removeState(echo);
      await agent.removeState(b);
      expect(existsSync(echo) || existsSync(b)).toBe(false);
    });

    it("keeps an echo's state directory equal to the primary's through its file sync", async () => {
      const primary = join(dir, 'p');
      const echo = join(dir, 'e');
      mkdirSync(primary, { mode: 0o700 });
      writeFileSync(join(primary, 'data'), 'v1');
      await agent.prepareSyncTarget(echo);
      const sync = agent.fileSync({
        service: 'tiny',
        settings: {
          mode: 'continuous',
          intervalMs: 50,
          bytesThreshold: 1,
          bandwidthLimit: 0,
          priorities: [],
          exclude: [],
        },
      });
      try {
        await sync.setPrimary(primary);
        await sync.addEcho('echo-1', echo);
        expect(await sync.waitCaughtUp('echo-1', 10_000)).toBe(true);
        expect(readFileSync(join(echo, 'data'), 'utf8')).toBe('v1');
        expect(sync.caughtUp('echo-1')).toBe(true);
        expect(sync.echoes().map((e) => e.echo)).toEqual(['echo-1']);
        await sync.removeEcho('echo-1');
        expect(sync.echoes()).toEqual([]);
      } finally {
        await sync.close();
      }
    });

    it('reports limits support, host facts and its identity', async () => {
      const support = await agent.limitsSupport();
      expect(typeof support.supported).toBe('boolean');
      const facts = await agent.hostFacts();
      expect(Number.isFinite(facts.loadPerCore) && facts.loadPerCore >= 0).toBe(true);
      expect(Number.isFinite(facts.diskLatencyMs) && facts.diskLatencyMs >= 0).toBe(true);
      expect(agent.runtimeName).toBe('process');
      expect(agent.address).toBe('127.0.0.1');
    });
  });
}
