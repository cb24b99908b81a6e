import { createServer, type Server } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { HostHeartbeats, hostHeartbeat, type HostSuspicion } from './host-heartbeat.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function listening(): Promise<{ server: Server; port: number }> {
  const server = createServer((s) => s.destroy());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
  return { server, port: (server.address() as { port: number }).port };
}

/** A port nothing listens on (a server opened then closed): connects are refused. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

describe('hostHeartbeat', () => {
  it('counts an accepted connection and a refused one as the host answering', async () => {
    const { port } = await listening();
    expect(await hostHeartbeat('127.0.0.1', port, 1000)).toBe('answered');
    // An agent restarting: its host's kernel refuses, the host itself is up.
    expect(await hostHeartbeat('127.0.0.1', await closedPort(), 1000)).toBe('answered');
    // Silence (no answer at all) needs a host that is gone: test/e2e/host-loss.test.ts, on namespaces.
  });

  it('an answer that came while the event loop stalled past the timeout still counts (no silence made up by a stall)', async () => {
    const { port } = await listening();
    const verdict = hostHeartbeat('127.0.0.1', port, 50);
    // The connect is issued on the next tick; then this process stalls for 4 timeouts.
    await new Promise((r) => process.nextTick(r));
    const until = Date.now() + 200;
    while (Date.now() < until) {
      // busy: the event loop is blocked, as under heavy load
    }
    expect(await verdict).toBe('answered');
  });
});

describe('HostHeartbeats', () => {
  it('suspects a silent host once, and never a host that answers', async () => {
    const { port } = await listening();
    const suspected: HostSuspicion[] = [];
    // `gone` never answers (as a host whose link is down); `alive` is a real TCP connect.
    const beats = new HostHeartbeats(
      {
        intervalMs: 20,
        phiThreshold: 3,
        acceptablePauseMs: 0,
        beat: (t, ms) =>
          t.host === 'gone' ? new Promise(() => undefined) : hostHeartbeat(t.address, t.port, ms),
      },
      { onSuspect: (s) => suspected.push(s), onRecover: () => undefined },
    );
    cleanups.push(() => beats.stop());
    beats.set({ host: 'alive', address: '127.0.0.1', port });
    beats.set({ host: 'gone', address: '127.0.0.1', port });
    beats.start();
    const deadline = Date.now() + 10_000;
    while (suspected.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    // Many more intervals: still one report for `gone`, none for `alive`.
    await new Promise((r) => setTimeout(r, 400));
    expect(suspected.map((s) => s.host)).toEqual(['gone']);
    expect(suspected[0]?.phi).toBeGreaterThanOrEqual(3);
    expect(beats.suspected('gone')).toBe(true);
    expect(beats.suspected('alive')).toBe(false);
    beats.delete('gone');
    expect(beats.suspected('gone')).toBe(false);
  });

  it('says how long ago the first unanswered heartbeat was sent: never before the cut', async () => {
    const suspected: HostSuspicion[] = [];
    let cutAt = 0;
    // Answers at once until the cut, then never (a link gone down).
    const beats = new HostHeartbeats(
      {
        intervalMs: 20,
        phiThreshold: 3,
        acceptablePauseMs: 0,
        beat: async () => (cutAt === 0 ? 'answered' : new Promise(() => undefined)),
      },
      { onSuspect: (s) => suspected.push(s), onRecover: () => undefined },
    );
    cleanups.push(() => beats.stop());
    beats.set({ host: 'h1', address: '127.0.0.1', port: 1 });
    beats.start();
    await new Promise((r) => setTimeout(r, 100));
    cutAt = Date.now();
    const deadline = Date.now() + 10_000;
    while (suspected.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    const s = suspected[0]!;
    // The first heartbeat not answered went out after the cut: the wait counted from it never starts
    // before the cut. (The silence may read shorter: a tick of this process that ran late restarts the
    // detector's clock, not this.)
    expect(s.unansweredMs).toBeDefined();
    expect(s.unansweredMs!).toBeLessThanOrEqual(s.at - cutAt);
  });
});
