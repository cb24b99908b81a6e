// The nginx recipe (examples/nginx) under `understudy up`, on the real nginx: served through the
// router, a file added on the primary reaches the warm echo by file sync, and after SIGKILL of the
// primary (nginx's master and workers: its process group) the promoted echo serves it.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { ApiClient } from '../../src/api/index.js';
import type { ServiceView } from '../../src/control/index.js';
import { commandExists } from '../../bench/lib/peers.js';
import { processesWithEnv, repoRoot, startUp, waitFor, type UpProcess } from './lib/cli.js';

const recipe = join(repoRoot, 'examples/nginx');
// Made by the first test that runs (a skipped file leaves nothing behind), removed after the last.
let workDir: string | undefined;
const work = (): string => (workDir ??= mkdtempSync(join(tmpdir(), 'understudy-nginx-')));
let current: { up: UpProcess; tag: string } | undefined;

afterEach(async () => {
  if (!current) return;
  current.up.child.kill('SIGINT');
  await current.up.exited;
  expect(processesWithEnv('US_TEST_TAG', current.tag)).toEqual([]);
  current = undefined;
});
afterAll(() => {
  if (workDir) rmSync(workDir, { recursive: true, force: true });
});

async function web(api: ApiClient): Promise<ServiceView> {
  const svc = (await api.services()).find((s) => s.name === 'web');
  if (!svc) throw new Error('no web service');
  return svc;
}

async function get(url: string): Promise<{ status: number; body: string }> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
    return { status: res.status, body: await res.text() };
  } catch {
    return { status: 0, body: '' };
  }
}

describe.runIf(commandExists('nginx'))(
  'nginx recipe (real nginx, warm echo, file sync)',
  { timeout: 120_000 },
  () => {
    it('serves through the router, and a file added on the primary is served by the promoted echo after SIGKILL', async () => {
      // The recipe's spec as shipped, with a tag in the environment to find every process it started.
      const tag = randomUUID();
      const spec = parse(readFileSync(join(recipe, 'understudy.yaml'), 'utf8')) as {
        services: { command: string[]; env: Record<string, string> }[];
      };
      const svc = spec.services[0];
      if (!svc) throw new Error('the recipe has no service');
      svc.command = svc.command.map((a) => a.replace('{specDir}', recipe));
      svc.env.US_TEST_TAG = tag;
      const file = join(work(), `${tag}.yaml`);
      writeFileSync(file, stringify(spec));
      const up = await startUp(file, join(work(), `data-${tag}`));
      current = { up, tag };
      const api = ApiClient.fromDataDir(join(work(), `data-${tag}`));
      await waitFor(
        async () => (await web(api)).instances.filter((i) => i.phase === 'running').length === 2,
        30_000,
        up.output,
      );
      const base = `http://${(await web(api)).dataPlane?.address}`;
      await waitFor(async () => (await get(`${base}/`)).status === 200, 15_000, up.output);
      expect((await get(`${base}/`)).body).toContain('Served by a stock nginx under Understudy.');

      const primary = (await web(api)).instances.find((i) => i.role === 'primary');
      const echo = (await web(api)).instances.find((i) => i.role === 'echo');
      if (!primary?.pid || !echo) throw new Error('no primary or echo');
      writeFileSync(join(primary.stateDir, 'www', 'deploy.txt'), `deployed ${tag}\n`);
      // The echo's nginx serves its synced copy (as it will once promoted).
      await waitFor(
        async () =>
          (await get(`http://127.0.0.1:${echo.ports.http}/deploy.txt`)).body === `deployed ${tag}\n`,
        15_000,
        () => 'the file never reached the echo',
      );

      process.kill(-(primary.pgid ?? primary.pid), 'SIGKILL');
      await waitFor(
        async () => (await web(api)).instances.find((i) => i.role === 'primary')?.id === echo.id,
        15_000,
        up.output,
      );
      await waitFor(async () => (await get(`${base}/deploy.txt`)).status === 200, 10_000, up.output);
      expect((await get(`${base}/deploy.txt`)).body).toBe(`deployed ${tag}\n`);
      expect((await web(api)).lastFailover).toMatchObject({
        kind: 'failover',
        from: primary.id,
        to: echo.id,
      });
    });
  },
);
