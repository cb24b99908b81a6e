// Seed 001's shadow profile, live: a real service that listens on a port, keeps a file open, holds a
// connection and burns CPU; its profile (from the control plane's samples and /proc) lists them.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { Agent, request } from 'undici';
import { ApiClient } from '../../src/api/index.js';
import type { ProfileView } from '../../src/control/index.js';
import { allocatePort } from '../../src/runtime/index.js';
import { SqliteStateStore } from '../../src/store/index.js';
import { parseProfile } from '../../src/telemetry/index.js';
import { processesWithEnv, runCli, startUp, waitFor } from './lib/cli.js';

const work = mkdtempSync(join(tmpdir(), 'understudy-profile-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

// Listens on its port, keeps `ledger.dat` in its state directory open, connects to itself, spins
// about half of each 100 ms, and answers every HTTP request (through the router) with 5 000 bytes.
const server = `
const net = require('node:net');
const fs = require('node:fs');
const path = require('node:path');
const port = Number(process.env.UNDERSTUDY_PORT_HTTP);
const fd = fs.openSync(path.join(process.env.UNDERSTUDY_STATE_DIR, 'ledger.dat'), 'a');
const answer = 'HTTP/1.1 200 OK\\r\\ncontent-length: 5000\\r\\n\\r\\n' + 'x'.repeat(5000);
const srv = net.createServer((s) => {
  s.on('error', () => {});
  s.on('data', (d) => { if (d.includes('\\r\\n\\r\\n')) s.write(answer); });
});
srv.listen(port, '127.0.0.1', () => {
  const c = net.connect(port, '127.0.0.1');
  c.on('error', () => {});
});
setInterval(() => { const t = Date.now(); while (Date.now() - t < 50) {} fs.writeSync(fd, 'x'); }, 100);
process.on('SIGTERM', () => process.exit(0));
`;

describe('service profile, live', { timeout: 90_000 }, () => {
  it('lists the port, connection, file and libraries the instance uses, its CPU and network per hour, and stores it', async () => {
    const tag = randomUUID();
    const script = join(work, 'busy-server.cjs');
    writeFileSync(script, server);
    const front = await allocatePort();
    const file = join(work, 'profile.yaml');
    writeFileSync(
      file,
      `services:
  - name: prof
    command: [node, ${script}]
    ports: { http: 0 }
    routing: { listen: 127.0.0.1:${front} }
    env: { US_TEST_TAG: ${tag} }
    echo: { count: 1, mode: warm }
    resources: { cpu: 1, memory: 256Mi, echoFraction: 0.25 }
`,
    );
    const dataDir = join(work, 'data');
    const up = await startUp(file, dataDir, { US_TEST_TAG: tag });
    let port = 0;
    // Traffic through the router while the profile fills: about 5 KB per request, one every 20 ms.
    const web = new Agent({ connections: 1 });
    let sending = true;
    const traffic = (async () => {
      while (sending) {
        await request(`http://127.0.0.1:${front}/`, { dispatcher: web })
          .then((r) => r.body.dump())
          .catch(() => undefined);
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    try {
      const api = ApiClient.fromDataDir(dataDir);
      const profile = (): Promise<ProfileView> =>
        api.request<ProfileView>('GET', '/v1/services/prof/profile');
      await waitFor(
        async () => {
          const p = await profile();
          const samples = p.hours.reduce((n, h) => n + h.samples, 0);
          const net = p.hours.find((h) => h.hour === p.now.hour)?.resources.network;
          return samples >= 3 && p.dependencies.listening.length > 0 && (net?.samples ?? 0) >= 2;
        },
        30_000,
        up.output,
      );
      const primary = (await api.instances()).find((i) => i.role === 'primary');
      port = primary?.ports.http ?? -1;

      // The API is asked before the CLI runs (runCli blocks this process: its keep-alive socket would go stale).
      const echo = (await api.instances()).find((i) => i.role === 'echo');
      const start = (await api.events({ service: 'prof', limit: 1000 })).find(
        (e) => e.kind === 'start' && e.instance === echo?.id,
      );
      const events = await api.events({ service: 'prof', limit: 1000 });
      expect(start?.inputs.sizing).toMatchObject({
        source: 'fixed-fraction',
        detail: expect.stringMatching(/profile has \d+ of the 300 samples/),
      });
      // A refinement that found new dependencies is a decision saying what was added.
      const refined = events.find((e) => e.kind === 'profile');
      expect(refined?.what).toMatch(/new dependencies .*listening/);

      const r = runCli(['profile', 'prof', '-d', dataDir, '-o', 'json']);
      expect(r.code, r.stderr).toBe(0);
      const p = JSON.parse(r.stdout) as ProfileView;
      expect(p.dependencies.listening).toContain(port);
      expect(p.dependencies.connected).toContain(`127.0.0.1:${port}`);
      expect(p.dependencies.files.some((f) => f.endsWith('/ledger.dat'))).toBe(true);
      expect(p.dependencies.libraries.some((l) => /libc\.so/.test(l))).toBe(true);
      const hour = p.hours.find((h) => h.hour === p.now.hour);
      // It spins about half the time (0.05 core at the least, even on a busy machine).
      expect(hour?.resources.cpu?.max).toBeGreaterThan(0.05);
      expect(hour?.resources.memory?.p50).toBeGreaterThan(1024 * 1024);
      expect(hour?.resources.diskWrite).toBeDefined();
      // Its network I/O, from the router's byte counters of this instance: tens of KB a second at the
      // most (5 000-byte answers, up to 50 a second), never more than the traffic sent.
      expect(hour?.resources.network?.max).toBeGreaterThan(5_000);
      expect(hour?.resources.network?.max).toBeLessThan(50 * 5_300 * 1.1);
      // Too few samples yet: the echo was started at the spec's fixed fraction, and its decision says so.
      expect(hour?.enough).toBe(false);
      expect(p.now.echo.source).toBe('fixed-fraction');
      const y = runCli(['profile', 'prof', '-d', dataDir, '-o', 'yaml']);
      expect((parse(y.stdout) as ProfileView).dependencies.listening).toContain(port);
      const t = runCli(['profile', 'prof', '-d', dataDir]);
      expect(t.stdout).toMatch(/HOUR\s+SAMPLES\s+CPU/);
      expect(t.stdout).toContain(`listening:  ${port}`);
      expect(runCli(['profile', 'nope', '-d', dataDir]).stderr).toMatch(/no service named 'nope'/);
    } finally {
      sending = false;
      await traffic;
      await web.close();
      up.child.kill('SIGINT');
      await up.exited;
      expect(processesWithEnv('US_TEST_TAG', tag)).toEqual([]);
    }
    // Written to the store on shutdown: the next control process starts from it.
    const store = await SqliteStateStore.create({ dataDir });
    try {
      const stored = parseProfile((await store.get('profiles/prof'))?.value ?? '');
      expect(stored?.dependencies.listening).toContain(port);
      expect(stored?.version).toBeGreaterThanOrEqual(1);
    } finally {
      await store.close();
    }
  });
});
