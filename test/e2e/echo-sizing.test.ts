// Seed 000: echoes start minimal and grow with their primary's utilisation (real cgroups).
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ApiClient } from '../../src/api/index.js';
import { ProcessRuntime } from '../../src/runtime/index.js';
import { processesWithEnv, startUp, waitFor } from './lib/cli.js';

const work = mkdtempSync(join(tmpdir(), 'understudy-sizing-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const limitsSupported = await (async () => {
  const rt = await ProcessRuntime.create({});
  const ok = rt.limitsSupport().supported;
  await rt.close();
  return ok;
})();

describe.skipIf(!limitsSupported)('echo sizing', { timeout: 60_000 }, () => {
  it('grows the echo when its primary is busy, recorded as a resize decision', async () => {
    const tag = randomUUID();
    const file = join(work, 'busy.yaml');
    // A primary that spins at its limit of 0.3 core (small, so that a busy machine still gives it that
    // much); its echo starts at a quarter of the limits.
    writeFileSync(
      file,
      `services:
  - name: busy
    command: [node, -e, "for (;;) {}"]
    ports: {}
    env: { US_TEST_TAG: ${tag} }
    echo: { count: 1, mode: warm }
    resources: { cpu: 0.3, memory: 256Mi, echoFraction: 0.25 }
`,
    );
    const dataDir = join(work, 'data');
    const up = await startUp(file, dataDir);
    try {
      const api = ApiClient.fromDataDir(dataDir);
      const echoLimits = async (): Promise<number | undefined> =>
        (await api.instances()).find((i) => i.role === 'echo')?.limits.cpu;
      await waitFor(async () => (await echoLimits()) !== undefined, 10_000, up.output);
      expect(await echoLimits()).toBeCloseTo(0.075, 3);
      await waitFor(async () => ((await echoLimits()) ?? 0) > 0.15, 20_000, up.output);
      const echoId = (await api.instances()).find((i) => i.role === 'echo')?.id;
      const resize = (await api.events({ service: 'busy', limit: 1000 })).find(
        (e) => e.kind === 'resize' && e.instance === echoId,
      );
      expect(resize?.outcome).toEqual({ status: 'ok' });
      expect(resize?.why).toMatch(/echo sized to \d+ % of full: primary utilisation \d+ %/);
    } finally {
      up.child.kill('SIGINT');
      await up.exited;
      expect(processesWithEnv('US_TEST_TAG', tag)).toEqual([]);
    }
  });

  it('grows a serving instance that runs at its CPU limit when its serving count is fixed', async () => {
    const tag = randomUUID();
    const file = join(work, 'spin.yaml');
    writeFileSync(
      file,
      `services:
  - name: spin
    command: [node, -e, "for (;;) {}"]
    ports: {}
    env: { US_TEST_TAG: ${tag} }
    echo: { count: 0 }
    resources: { cpu: 0.2, memory: 256Mi }
`,
    );
    const dataDir = join(work, 'data-spin');
    const up = await startUp(file, dataDir);
    try {
      const api = ApiClient.fromDataDir(dataDir);
      const cpu = async (): Promise<number | undefined> =>
        (await api.instances()).find((i) => i.role === 'primary')?.limits.cpu;
      await waitFor(async () => (await cpu()) !== undefined, 10_000, up.output);
      expect(await cpu()).toBeCloseTo(0.2, 2);
      await waitFor(async () => ((await cpu()) ?? 0) > 0.25, 20_000, up.output);
      expect(await cpu()).toBeCloseTo(0.3, 2);
      const resize = (await api.events({ service: 'spin', limit: 1000 })).find((e) => e.kind === 'resize');
      expect(resize?.what).toMatch(/^resize serving instance spin-1 to 0\.30 CPU/);
      expect(resize?.why).toMatch(/CPU \d+ %.*grow above 85 %/);
    } finally {
      up.child.kill('SIGINT');
      await up.exited;
      expect(processesWithEnv('US_TEST_TAG', tag)).toEqual([]);
    }
  });
});
