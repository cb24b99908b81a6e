// A promotion that fails half-way does not leave the service without a primary: the next echo is tried.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, describe, expect, it } from 'vitest';
import { ApiClient } from '../../src/api/index.js';
import { processesWithEnv, startUp, waitFor } from './lib/cli.js';

const work = mkdtempSync(join(tmpdir(), 'understudy-retry-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

// Serves unless it is instance r-2, which starts but never listens: a cold echo that cannot take over.
const server = `
const id = process.env.UNDERSTUDY_INSTANCE;
if (id === 'r-2') setInterval(() => {}, 1000);
else require('node:http').createServer((q, s) => s.end(id)).listen(Number(process.argv[2]), '127.0.0.1');
`;

describe('failover retry', { timeout: 90_000 }, () => {
  it('promotes the next echo when the first cannot take over, so a primary serves again', async () => {
    const tag = randomUUID();
    const script = join(work, 'server.cjs');
    writeFileSync(script, server);
    const file = join(work, 'r.yaml');
    writeFileSync(
      file,
      `services:
  - name: r
    command: [node, ${script}, '{port}']
    ports: { http: 0 }
    env: { US_TEST_TAG: ${tag} }
    health: { http: { path: / }, interval: 200ms, timeout: 300ms, startPeriod: 1s }
    routing: { listen: 127.0.0.1:0 }
    echo: { count: 2, mode: cold }
`,
    );
    const dataDir = join(work, 'data');
    const up = await startUp(file, dataDir, { US_TEST_TAG: tag });
    try {
      const api = ApiClient.fromDataDir(dataDir);
      const find = async (id: string): Promise<string | undefined> =>
        (await api.instances()).find((i) => i.id === id)?.phase;
      await waitFor(
        async () => (await find('r-1')) === 'running' && (await find('r-3')) === 'standby',
        20_000,
        up.output,
      );
      const pid = (await api.instances()).find((i) => i.id === 'r-1')?.pid ?? 0;
      process.kill(pid, 'SIGKILL');
      const address = (await api.services()).find((s) => s.name === 'r')?.dataPlane?.address ?? '';
      await waitFor(
        async () =>
          (await api.instances()).some(
            (i) => i.id === 'r-3' && i.role === 'primary' && i.phase === 'running',
          ),
        40_000,
        up.output,
      );
      const res = await request(`http://${address}/`);
      expect(await res.body.text()).toBe('r-3');
      // The promotion's decision is settled just after the roles are saved (and its intent removed).
      const failoverEvents = async () =>
        (await api.events({ service: 'r', limit: 1000 })).filter((e) => e.kind === 'failover');
      await waitFor(
        async () => (await failoverEvents()).every((f) => f.outcome.status !== 'pending'),
        10_000,
        up.output,
      );
      const failovers = await failoverEvents();
      expect(failovers.map((f) => f.outcome.status)).toEqual(['failed', 'ok']);
      expect(failovers[0]?.outcome.detail).toMatch(/cold echo r-2 did not become ready/);
      expect(failovers[1]?.why).toMatch(/after r-2 could not take over/);
    } finally {
      up.child.kill('SIGINT');
      await up.exited;
      expect(processesWithEnv('US_TEST_TAG', tag)).toEqual([]);
    }
  });
});
