import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode } from '../errors/index.js';
import { ProcessRuntime } from '../runtime/index.js';
import { AgentServer } from './agent-server.js';
import type { AgentStreamLine } from './agent-wire.js';
import { LocalAgent } from './local-agent.js';

const SECRET = 'server-test-secret-0123456789abcd';
let dir: string;
let local: LocalAgent;
let server: AgentServer;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'understudy-agent-server-'));
  local = new LocalAgent({ runtime: await ProcessRuntime.create({ graceMs: 500 }), host: 'h1' });
  server = await AgentServer.start({ agent: local, secret: SECRET });
});

afterAll(async () => {
  await server?.close();
  await local?.close({ graceMs: 200 });
  rmSync(dir, { recursive: true, force: true });
});

function launchBody(id: string): unknown {
  return {
    launch: {
      instanceId: id,
      service: 'svc',
      host: 'h1',
      command: [process.execPath, '-e', 'setInterval(() => {}, 1000)'],
      cwd: dir,
      env: {},
      stateDir: join(dir, id),
      logDir: join(dir, 'logs'),
      logMaxBytes: 65536,
    },
  };
}

async function post(method: string, body: unknown, auth?: string, raw?: string) {
  const res = await request(`${server.url}/v1/${method}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(auth === undefined ? {} : { authorization: auth }) },
    body: raw ?? JSON.stringify(body),
  });
  const text = await res.body.text();
  return {
    status: res.statusCode,
    headers: res.headers,
    body: (text ? JSON.parse(text) : {}) as {
      error?: { code: string; message: string; problems?: unknown[] };
    },
  };
}

/** Reads the event stream until `count` lines arrived, then closes it. */
async function readLines(query: string, count: number): Promise<AgentStreamLine[]> {
  const ac = new AbortController();
  const res = await request(`${server.url}/v1/events?${query}`, {
    headers: { authorization: `Bearer ${SECRET}` },
    signal: ac.signal,
  });
  const lines: AgentStreamLine[] = [];
  let rest = '';
  try {
    for await (const chunk of res.body) {
      rest += String(chunk);
      const parts = rest.split('\n');
      rest = parts.pop() ?? '';
      for (const p of parts) lines.push(JSON.parse(p) as AgentStreamLine);
      if (lines.length >= count) break;
    }
  } finally {
    ac.abort();
  }
  return lines;
}

describe('AgentServer', () => {
  it('refuses a request without the bearer token or with a wrong one (401) and starts nothing', async () => {
    const none = await post('start', launchBody('intruder-1'));
    expect(none.status).toBe(401);
    expect(none.headers['www-authenticate']).toBe('Bearer');
    expect(none.body.error?.code).toBe(ErrorCode.ApiAuth);
    const wrong = await post('start', launchBody('intruder-2'), `Bearer ${SECRET.slice(0, -1)}x`);
    expect(wrong.status).toBe(401);
    expect(JSON.stringify(wrong.body)).not.toContain(SECRET);
    expect(await local.instance('intruder-1')).toBeUndefined();
    expect(await local.instance('intruder-2')).toBeUndefined();
    const stream = await request(`${server.url}/v1/events?after=0&client=x`);
    expect(stream.statusCode).toBe(401);
    await stream.body.text();
    const unknown = await request(`${server.url}/v1/nothing-here`, { method: 'POST' });
    expect(unknown.statusCode).toBe(401);
    await unknown.body.text();
  });

  it('answers a malformed body with 400 naming the field, and does nothing', async () => {
    const auth = `Bearer ${SECRET}`;
    const bad = await post('stop', { instanceId: 5 }, auth);
    expect(bad.status).toBe(400);
    expect(bad.body.error?.code).toBe(ErrorCode.ApiRequest);
    expect(bad.body.error?.message).toContain('body.instanceId');
    expect(bad.body.error?.problems).toEqual([expect.objectContaining({ field: 'body.instanceId' })]);
    const extra = await post('kill', { instanceId: 'a', signal: 'SIGKILL', also: 1 }, auth);
    expect(extra.status).toBe(400);
    expect(extra.body.error?.message).toContain('also');
    const start = await post(
      'start',
      { launch: { ...(launchBody('x') as { launch: object }).launch, command: [] } },
      auth,
    );
    expect(start.status).toBe(400);
    expect(start.body.error?.message).toContain('body.launch.command');
    expect(await local.instance('x')).toBeUndefined();
    const badSignal = await post('kill', { instanceId: 'a', signal: 'SIGNOPE' }, auth);
    expect(badSignal.status).toBe(400);
    expect(badSignal.body.error?.message).toContain('body.signal');
    const wrongHost = await post(
      'start',
      { launch: { ...(launchBody('y') as { launch: object }).launch, host: 'h2' } },
      auth,
    );
    expect(wrongHost.status).toBe(400);
    expect(wrongHost.body.error?.message).toContain('body.launch.host');
    expect(await local.instance('y')).toBeUndefined();
    const notJson = await post('stop', undefined, auth, '{"instanceId":');
    expect(notJson.status).toBe(400);
    expect(notJson.body.error?.code).toBe(ErrorCode.ApiRequest);
    const tooBig = await post('stop', { instanceId: 'a'.repeat(2 * 1024 * 1024) }, auth);
    expect(tooBig.status).toBe(413);
  });

  it("keeps an agent's errors with their code: an unknown instance is 404 UNDERSTUDY_ERR_RUNTIME_UNKNOWN_INSTANCE", async () => {
    const r = await post('stop', { instanceId: 'nobody' }, `Bearer ${SECRET}`);
    expect(r.status).toBe(404);
    expect(r.body.error?.code).toBe(ErrorCode.RuntimeUnknownInstance);
  });

  it('numbers exit events and resumes a stream after the last event a client saw', async () => {
    const auth = `Bearer ${SECRET}`;
    for (const id of ['seq-a', 'seq-b']) {
      expect((await post('start', launchBody(id), auth)).status).toBe(200);
      const exited = new Promise<void>((resolve) => {
        const off = local.onExit((h) => {
          if (h.instanceId !== id) return;
          off();
          resolve();
        });
      });
      await post('kill', { instanceId: id, signal: 'SIGKILL' }, auth);
      await exited;
    }
    const all = await readLines('after=0&client=t1', 3);
    const hello = all[0] as Extract<AgentStreamLine, { type: 'hello' }>;
    expect(hello.type).toBe('hello');
    const exits = all.slice(1).filter((l) => l.type === 'exit');
    expect(exits.map((e) => e.handle.instanceId)).toEqual(['seq-a', 'seq-b']);
    const firstSeq = (exits[0] as { seq: number }).seq;
    const resumed = await readLines(`after=${firstSeq}&boot=${hello.boot}&client=t1`, 2);
    expect(resumed[0]).toMatchObject({ type: 'hello', boot: hello.boot, gap: false });
    expect(resumed[1]).toMatchObject({ type: 'exit', seq: firstSeq + 1, handle: { instanceId: 'seq-b' } });
  });

  it('keeps an event stream open past the request timeout (it only bounds receiving the request)', async () => {
    const short = await AgentServer.start({
      agent: local,
      secret: SECRET,
      requestTimeoutMs: 200,
      pingMs: 50,
    });
    try {
      const ac = new AbortController();
      const res = await request(`${short.url}/v1/events?after=0&client=long`, {
        headers: { authorization: `Bearer ${SECRET}` },
        signal: ac.signal,
      });
      const started = Date.now();
      let pings = 0;
      for await (const chunk of res.body) {
        pings += String(chunk)
          .split('\n')
          .filter((l) => l.includes('"ping"')).length;
        if (Date.now() - started > 800) break;
      }
      ac.abort();
      expect(pings).toBeGreaterThan(5);
    } finally {
      await short.close();
    }
  });
});
